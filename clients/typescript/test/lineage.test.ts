// Forks, fan-outs and rewinds through a real server: the lineage reads
// agree with what was forked, and a rewound run is superseded.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Journal, SupersededError } from "../src/index.js";
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

test("a fork's history is the parent's prefix then its own events; parent and children agree", async () => {
  const parentKey = freshKey("parent");
  const parent = await journal.begin(parentKey);
  await parent.step([{ role: "user", content: "shared" }]);
  await parent.step([{ role: "user", content: "parent only" }]);
  const childKey = { ...parentKey, agent: "child" };
  const child = await journal.fork(parentKey, 1, childKey);
  assert.deepEqual(child.key, childKey);
  await child.step([{ role: "user", content: "child only" }]);

  const history = await journal.history(childKey);
  const contents = history.envelopes.flatMap((envelope) =>
    envelope.event.type === "step" ? envelope.event.messages.map((message) => message.content) : [],
  );
  assert.deepEqual(contents, ["shared", "child only"]);
  assert.deepEqual((await journal.parent(childKey))?.key, parentKey);
  assert.equal(await journal.parent(parentKey), null);
  assert.deepEqual(
    (await journal.children(parentKey)).map((record) => record.key),
    [childKey],
  );
  assert.deepEqual(
    (await journal.descendants(parentKey)).map((record) => record.key),
    [childKey],
  );
  const diff = await journal.diff(parentKey, childKey);
  assert.equal(diff.common, 2);
  assert.ok(diff.state_differences.some((difference) => difference.field === "transcript"));
});

test("fanout forks one new episode per child", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  await run.custom("n", "1");
  const children = await journal.fanout(key, 1, 3);
  assert.equal(children.length, 3);
  assert.equal(new Set(children.map((child) => child.key.episode)).size, 3);
  for (const child of children) {
    assert.equal(child.key.goal, key.goal);
    assert.equal(child.key.agent, key.agent);
  }
});

test("a rewound run is superseded: resuming it is SupersededError, the branch goes on", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  await run.custom("good", "1");
  await run.custom("bad", "2");
  const branch = await journal.rewind(key, 1);
  await branch.custom("better", "2");
  await assert.rejects(journal.resume(key), (error: unknown) => {
    assert.ok(error instanceof SupersededError);
    assert.equal(error.code, "superseded");
    return true;
  });
  assert.equal((await journal.record(key)).status, "superseded");
  const recoverable = await journal.recoverable();
  assert.ok(!recoverable.some((state) => state.run.goal === key.goal && state.run.agent === key.agent && state.run.episode === key.episode));
});
