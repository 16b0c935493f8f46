// Fencing and optimistic concurrency across clients: a stale epoch is
// FencedError, a stale expected seq is ConflictError, and neither writes.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { ConflictError, FencedError, Journal } from "../src/index.js";
import { freshKey, Server } from "./server.js";

let server: Server;
let first: Journal;
let second: Journal;

before(async () => {
  server = await Server.start();
  first = await server.connect();
  second = await server.connect();
});

after(async () => {
  first?.close();
  second?.close();
  await server?.stop();
});

test("after two resumes the older handle's append is FencedError and writes nothing", async () => {
  const key = freshKey();
  await first.begin(key);
  const { run: older } = await first.resume(key);
  const { run: newer } = await second.resume(key);
  assert.equal(older.epoch, 1);
  assert.equal(newer.epoch, 2);
  const before = (await first.events(key)).envelopes.length;

  const error = await older.custom("late", "x").then(
    () => assert.fail("a fenced append succeeded"),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof FencedError, `expected FencedError, got ${String(error)}`);
  assert.equal(error.code, "fenced");
  assert.deepEqual(error.run, key);
  assert.equal(error.epoch, 1);
  assert.equal(error.current, 2);
  assert.equal(error.status, 409);

  assert.equal((await first.events(key)).envelopes.length, before);
  assert.equal(older.epoch, 1);
  assert.equal(older.nextSeq, 2);
  const written = await newer.custom("on", "time");
  assert.equal(written.seq, before);
});

test("a stale expected seq is ConflictError with expected and actual, and the view stays as stored", async () => {
  const key = freshKey();
  const run = await first.begin(key);
  const copy = second.attach(run.toHandle());
  await run.custom("first", "1");
  const head = run.head;

  const error = await copy.custom("second", "2").then(
    () => assert.fail("a conflicting append succeeded"),
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof ConflictError, `expected ConflictError, got ${String(error)}`);
  assert.equal(error.code, "conflict");
  assert.equal(error.expected, 1);
  assert.equal(error.actual, 2);
  assert.equal(copy.nextSeq, 1);

  const page = await first.events(key);
  assert.equal(page.envelopes.length, 2);
  assert.equal(page.envelopes[1]?.hash, head);
});

test("a conflicting batch is stored all or nothing", async () => {
  const key = freshKey();
  const run = await first.begin(key);
  const copy = second.attach(run.toHandle());
  await run.custom("a", "1");
  await assert.rejects(
    copy.append([
      { type: "custom", kind: "b", data: "1" },
      { type: "custom", kind: "b", data: "2" },
    ]),
    ConflictError,
  );
  assert.equal((await first.events(key)).envelopes.length, 2);
});
