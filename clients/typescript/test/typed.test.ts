// Every typed helper writes the event the journal format names, accepted by
// the server's strict decoding and typed checks, and folded as docs/resume-state.md says.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { InvalidError, Journal, Outcome } from "../src/index.js";
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

test("every typed helper is accepted and folds into the state", async () => {
  const key = freshKey();
  const run = await journal.begin(key, { conflict_strategy: "first_claim", labels: { origin: "ts" } });
  await run.resourceAcquired("sandbox-1");
  await run.compactionStarted("structured", { id: "c1", messages: 10, tokens: 1000 });
  await run.compactionDone("structured", { id: "c1", summary: "so far", messages: 1, tokens: 50 });
  await run.segmentRotated("session_changed", "s-2", { origin: "other", session: "s-2" });
  await run.handoffSent({
    id: "h1",
    from: key.agent,
    to: "reviewer",
    generation: 1,
    version: "1.2.3",
    contentHash: "abcdef",
    timeoutMs: 600_000,
  });
  await run.handoffAcked("h1", "reviewer");
  await run.handoffSent({
    id: "h2",
    from: key.agent,
    to: "reviewer",
    generation: 2,
    version: "1.2.3",
    contentHash: "abcdef",
    timeoutMs: 600_000,
  });
  await run.handoffRejected("h2", "reviewer", "not now");
  await run.handoffSent({
    id: "h3",
    from: key.agent,
    to: "reviewer",
    generation: 3,
    version: "1.2.3",
    contentHash: "abcdef",
    timeoutMs: 600_000,
  });
  await run.handoffTimedOut("h3");
  await run.taskClaimed("t1", key.agent, 1, 0.75);
  await run.taskCompleted("t1", key.agent, "success", "done");
  await run.agentDied("oom", 137);
  await run.teardown("sandbox-1", "stuck");
  await run.finish(Outcome.completed());

  const state = await journal.state(key);
  assert.equal(state.status, "completed");
  assert.deepEqual(state.compaction, { active: false, count: 1, gate: "structured" });
  assert.equal(state.segment, 2);
  assert.deepEqual(state.transcript, []);
  assert.deepEqual(
    state.segments.map((segment) => segment.end_reason),
    ["compaction", "session_changed"],
  );
  assert.deepEqual(state.provenance, { origin: "ts", session: "s-2" });
  assert.deepEqual(
    state.handoffs.map((handoff) => [handoff.id, handoff.status]),
    [
      ["h1", "acknowledged"],
      ["h2", "rejected"],
      ["h3", "timed_out"],
    ],
  );
  assert.equal(state.handoff_success_rate, 1 / 3);
  assert.deepEqual(state.tasks, [{ task: "t1", status: "completed", claimed_by: key.agent, contenders: [key.agent] }]);
  assert.deepEqual(state.died, { reason: "oom", exit_code: 137 });
  assert.deepEqual(state.resources, [{ resource: "sandbox-1", acquired_seq: 1, torn_down: true, error: "stuck" }]);
  assert.deepEqual(state.anomalies, []);
});

test("a typed completion by an agent that does not hold the task is refused and writes nothing", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  await run.taskClaimed("t1", "holder", 0, 1);
  await assert.rejects(run.taskCompleted("t1", "someone-else", "success"), (error: unknown) => {
    assert.ok(error instanceof InvalidError);
    assert.equal(error.code, "refused");
    assert.equal(error.details.kind, "wrong_agent");
    return true;
  });
  assert.equal(run.nextSeq, 2);
  assert.equal((await journal.events(key)).envelopes.length, 2);
});
