// Every refusal through a real server arrives as its typed error, with the
// server's code, the run and the details, and changes nothing stored.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import {
  AlreadyExistsError,
  ConnectionError,
  FinishedError,
  InvalidError,
  Journal,
  MismatchError,
  NotFoundError,
  Outcome,
  RunjournalError,
} from "../src/index.js";
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

/** The error `promise` rejects with; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<RunjournalError> {
  const outcome = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  assert.ok(outcome instanceof RunjournalError, `expected a RunjournalError, got ${String(outcome)}`);
  return outcome;
}

test("resuming a run that does not exist is NotFoundError naming the run", async () => {
  const key = freshKey();
  const error = await rejection(journal.resume(key));
  assert.ok(error instanceof NotFoundError);
  assert.equal(error.code, "not_found");
  assert.equal(error.status, 404);
  assert.deepEqual(error.run, key);
  assert.equal((await journal.runs({ goal: key.goal })).length, 0);
});

test("beginning a run that exists is AlreadyExistsError", async () => {
  const key = freshKey();
  await journal.begin(key);
  const error = await rejection(journal.begin(key));
  assert.ok(error instanceof AlreadyExistsError);
  assert.equal(error.code, "already_exists");
  assert.equal(error.status, 409);
  assert.equal((await journal.events(key)).envelopes.length, 1);
});

test("resuming a completed run is FinishedError", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  await run.finish(Outcome.completed());
  const error = await rejection(journal.resume(key));
  assert.ok(error instanceof FinishedError);
  assert.equal(error.code, "finished");
  assert.deepEqual(error.run, key);
  assert.equal((await journal.events(key)).envelopes.length, 2);
});

test("a resume expectation the stored meta breaks is MismatchError naming field, stored and expected", async () => {
  const key = freshKey();
  await journal.begin(key, { backend: "claude-code" });
  const error = await rejection(journal.resume(key, { backend: "codex" }));
  assert.ok(error instanceof MismatchError);
  assert.equal(error.code, "mismatch");
  assert.equal(error.details.field, "backend");
  assert.equal(error.details.stored, "claude-code");
  assert.equal(error.details.expected, "codex");
  assert.equal((await journal.events(key)).envelopes.length, 1);
});

test("an invalid key is InvalidError with code invalid_key", async () => {
  const error = await rejection(journal.begin({ goal: "", episode: 0, agent: "a" }));
  assert.ok(error instanceof InvalidError);
  assert.equal(error.code, "invalid_key");
  assert.equal(error.status, 400);
});

test("an event out of order is InvalidError with code out_of_order and writes nothing", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  const error = await rejection(run.append([{ type: "run_started", meta: {} }]));
  assert.ok(error instanceof InvalidError);
  assert.equal(error.code, "out_of_order");
  assert.equal(error.seq, 1);
  assert.equal(run.nextSeq, 1);
  assert.equal((await journal.events(key)).envelopes.length, 1);
});

test("an event outside its value ranges is InvalidError with code invalid_event", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  const error = await rejection(run.taskClaimed("t", "a", 9, 0.5));
  assert.ok(error instanceof InvalidError);
  assert.equal(error.code, "invalid_event");
  assert.equal((await journal.events(key)).envelopes.length, 1);
});

test("typed helpers refuse what the fold would ignore; a raw append records it as an anomaly", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  await run.handoffSent({
    id: "h1",
    from: "a",
    to: "b",
    generation: 1,
    version: "1.0.0",
    contentHash: "ab",
    timeoutMs: 60_000,
  });
  const error = await rejection(run.handoffAcked("h1", "intruder"));
  assert.ok(error instanceof InvalidError);
  assert.equal(error.code, "refused");
  assert.equal(run.nextSeq, 2);

  await run.append([{ type: "handoff_acked", id: "h1", by: "intruder" }]);
  const state = await journal.state(key);
  assert.deepEqual(
    state.anomalies.map((anomaly) => anomaly.kind),
    ["wrong_agent"],
  );
  assert.equal(state.handoffs[0]?.status, "pending");
});

test("a socket nobody serves is ConnectionError, not a hang", async () => {
  const error = await rejection(Journal.connect(`${server.dir}/nobody.sock`, { timeoutMs: 5_000 }));
  assert.ok(error instanceof ConnectionError);
  assert.equal(error.code, "connection");
  assert.equal(error.status, null);
});

test("a database directory nobody serves names its socket in the ConnectionError", async () => {
  const error = await rejection(Journal.connect(`${server.dir}/missing.db`, { timeoutMs: 5_000 }));
  assert.ok(error instanceof ConnectionError);
  assert.equal(error.details.endpoint, `unix:${server.dir}/missing.db/runjournal.sock`);
  assert.equal(error.details.errno, "ENOENT");
});
