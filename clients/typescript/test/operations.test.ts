// Operator actions, episodes, export/import, sync and metrics through a real
// server.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Journal, Outcome } from "../src/index.js";
import { freshKey, Server } from "./server.js";

let server: Server;
let journal: Journal;

before(async () => {
  server = await Server.start();
  journal = await server.connect();
});

after(async () => {
  journal?.close();
  await server?.stop();
});

test("interrupt leaves the run recoverable; operatorResume and fail report what they wrote", async () => {
  const key = freshKey();
  await journal.begin(key);
  const interrupted = await journal.interrupt(key, "ops@host");
  assert.equal(interrupted.status, "interrupted");
  assert.ok((await journal.recoverable()).some((state) => state.run.goal === key.goal));
  const resumed = await journal.operatorResume(key, "ops@host");
  assert.equal(resumed.status, "running");
  assert.ok(resumed.epoch > interrupted.epoch);
  const failed = await journal.fail(key, "ops@host", "stuck");
  assert.equal(failed.status, "failed");
  assert.equal((await journal.state(key)).status, "failed");
});

test("nextEpisode allocates a fresh attempt of the goal", async () => {
  const key = freshKey();
  await journal.begin(key);
  assert.equal(await journal.nextEpisode(key.goal), 1);
  assert.equal(await journal.latestEpisode(key.goal, "nobody"), null);
});

test("an exported run imports under a new goal with the same events", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  await run.step([{ role: "user", content: "carry me" }]);
  await run.finish(Outcome.completed("ok"));
  const exported = await journal.export(key);
  const lines = exported.trim().split("\n");
  assert.equal(lines.length, 3);

  const moved = `${key.goal} (copy)`;
  const renamed = lines
    .map((line) => JSON.parse(line) as { run: { goal: string }; hash?: string })
    .map((envelope) => {
      envelope.run.goal = moved;
      delete envelope.hash;
      return JSON.stringify(envelope);
    })
    .join("\n");
  const report = await journal.import(`${renamed}\n`);
  assert.equal(report.events, 3);
  assert.equal(report.runs[0]?.run.goal, moved);
  const state = await journal.state({ ...key, goal: moved });
  assert.equal(state.status, "completed");
  assert.equal(state.transcript[0]?.content, "carry me");
});

test("sync resolves and metrics speak the Prometheus text format", async () => {
  const run = await journal.begin(freshKey());
  await run.custom("n", "1", { durability: "buffered" });
  await journal.sync();
  const metrics = await journal.metrics();
  assert.match(metrics, /^# (HELP|TYPE) /m);
  assert.match(metrics, /^runjournal_\w+ /m);
});
