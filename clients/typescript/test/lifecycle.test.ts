// A run's whole life through a real server: begin, typed appends, a batch,
// finish, then every read agrees with what was written.

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

test("health names the server and API version 1", async () => {
  const health = await journal.health();
  assert.equal(health.server, "runjournal");
  assert.equal(health.api, 1);
  assert.equal(typeof health.version, "string");
});

test("begin, append, finish: the state folds exactly what was written", async () => {
  const key = freshKey();
  const run = await journal.begin(key, { backend: "claude-code", model: "m-1" });
  assert.deepEqual(run.key, key);
  assert.equal(run.epoch, 0);
  assert.equal(run.nextSeq, 1);

  const phase = await run.phaseStarted(0, "plan");
  assert.equal(phase.seq, 1);
  assert.equal(phase.event.type, "phase_started");
  await run.step([
    { role: "user", content: "fix the bug" },
    { role: "assistant", content: "on it" },
  ]);
  await run.usage({ inputTokens: 100, outputTokens: 20, costUsd: 0.5, counters: { tool_calls: 2 } });
  await run.phaseCompleted(0, "plan", "a plan");
  const batch = await run.append([{ type: "turn_completed" }, { type: "custom", kind: "note", data: "x" }]);
  assert.deepEqual(
    batch.map((envelope) => envelope.seq),
    [5, 6],
  );
  assert.equal(run.nextSeq, 7);
  assert.equal(run.head, batch[1]?.hash);

  const finished = await run.finish(Outcome.completed("done"));
  assert.equal(finished[0]?.event.type, "run_completed");
  assert.equal(run.nextSeq, 8);

  const state = await journal.state(key);
  assert.equal(state.status, "completed");
  assert.equal(state.recoverable, false);
  assert.equal(state.last_seq, 7);
  assert.equal(state.head, run.head);
  assert.equal(state.iteration, 1);
  assert.deepEqual(
    state.transcript.map((message) => message.content),
    ["fix the bug", "on it"],
  );
  assert.deepEqual(state.phases.completed, [{ index: 0, name: "plan", output: "a plan" }]);
  assert.equal(state.phases.active, null);
  assert.equal(state.usage.input_tokens, 100);
  assert.equal(state.usage.counters.tool_calls, 2);
  assert.equal(state.output, "done");
  assert.equal(state.meta.backend, "claude-code");
});

test("state at a seq folds only the events up to it", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  await run.step([{ role: "user", content: "one" }]);
  await run.step([{ role: "user", content: "two" }]);
  const early = await journal.state(key, { at: 1 });
  assert.equal(early.iteration, 1);
  assert.equal(early.last_seq, 1);
  const late = await journal.state(key);
  assert.equal(late.iteration, 2);
});

test("events pages the own log in order, chained, and verify agrees with the head", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  for (let index = 0; index < 5; index += 1) {
    await run.custom("tick", String(index));
  }
  const first = await journal.events(key, { from: 0, limit: 4 });
  assert.deepEqual(
    first.envelopes.map((envelope) => envelope.seq),
    [0, 1, 2, 3],
  );
  assert.equal(first.next, 4);
  const rest = await journal.events(key, { from: first.next ?? 0 });
  assert.deepEqual(
    rest.envelopes.map((envelope) => envelope.seq),
    [4, 5],
  );
  assert.equal(rest.next, null);
  assert.equal(first.envelopes[0]?.event.type, "run_started");
  assert.match(rest.envelopes[1]?.hash ?? "", /^[0-9a-f]{64}$/);

  const report = await journal.verify(key);
  assert.deepEqual(report.run, key);
  assert.equal(report.events, 6);
  assert.equal(report.head, run.head);
});

test("runs lists a run by goal with its status and head", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  await run.finish(Outcome.failed("backend", "boom", [{ kind: "stop", message: "sandbox stuck" }]));
  const records = await journal.runs({ goal: key.goal });
  assert.equal(records.length, 1);
  assert.deepEqual(records[0]?.key, key);
  assert.equal(records[0]?.status, "failed");
  assert.equal(records[0]?.head.next_seq, 2);
  const state = await journal.state(key);
  assert.deepEqual(state.failure, {
    error: { kind: "backend", message: "boom" },
    cleanup_errors: [{ kind: "stop", message: "sandbox stuck" }],
  });
});

test("resume continues at a new epoch with the state so far; an interrupted run resumes", async () => {
  const key = freshKey();
  const run = await journal.begin(key, { backend: "b" });
  await run.step([{ role: "user", content: "hi" }]);
  await run.finish(Outcome.interrupted());
  const { run: resumed, state } = await journal.resume(key, { backend: "b" });
  assert.equal(resumed.epoch, 1);
  assert.equal(state.epoch, 1);
  assert.equal(state.status, "running");
  assert.equal(state.iteration, 1);
  assert.equal(resumed.nextSeq, 4);
  const envelope = await resumed.turnCompleted();
  assert.equal(envelope.epoch, 1);
  assert.equal(envelope.seq, 4);
});

test("resumeLatest resumes the newest recoverable episode of the agent", async () => {
  const goal = freshKey().goal;
  await journal.begin({ goal, episode: 0, agent: "solo" });
  await journal.begin({ goal, episode: 1, agent: "solo" });
  const { run } = await journal.resumeLatest(goal, "solo");
  assert.deepEqual(run.key, { goal, episode: 1, agent: "solo" });
  assert.equal(run.epoch, 1);
  assert.equal(await journal.latestEpisode(goal, "solo"), 1);
});

test("appends through one Run issued without waiting are written in call order", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  const written = await Promise.all([run.custom("n", "a"), run.custom("n", "b"), run.custom("n", "c")]);
  assert.deepEqual(
    written.map((envelope) => envelope.seq),
    [1, 2, 3],
  );
  const page = await journal.events(key, { from: 1 });
  assert.deepEqual(
    page.envelopes.map((envelope) => (envelope.event.type === "custom" ? envelope.event.data : "")),
    ["a", "b", "c"],
  );
});
