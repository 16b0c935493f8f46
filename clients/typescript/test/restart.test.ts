// The owner going away: a clean stop ends subscriptions with reason
// shutdown; after a SIGKILL and a restart on the same database, a
// subscription reconnects on its own and still sees every event exactly
// once, and every acknowledged durable append is there.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, test } from "node:test";

import { ConnectionError, Journal, type Envelope } from "../src/index.js";
import { freshKey, Server } from "./server.js";

const servers: Server[] = [];

after(async () => {
  for (const server of servers) {
    await server.stop();
  }
});

async function started(): Promise<Server> {
  const server = await Server.start();
  servers.push(server);
  return server;
}

test("SIGTERM ends a subscription with reason shutdown and removes the socket", async () => {
  const server = await started();
  const journal = await server.connect();
  const key = freshKey();
  const run = await journal.begin(key);
  await run.custom("n", "1");
  const subscription = journal.subscribe(key);
  const iterator = subscription[Symbol.asyncIterator]();
  assert.equal((await iterator.next()).value?.seq, 0);
  assert.equal((await iterator.next()).value?.seq, 1);

  const exit = await server.kill("SIGTERM");
  assert.equal(exit.code, 0, `serve exited ${JSON.stringify(exit)}:\n${server.log}`);
  assert.equal((await iterator.next()).done, true);
  assert.equal(subscription.endReason, "shutdown");
  assert.equal(subscription.nextSeq, 2);
  assert.equal(existsSync(server.socketPath), false, "the socket outlived the server");
  await assert.rejects(journal.health(), ConnectionError);
  journal.close();
});

test("after SIGKILL and a restart the subscription resumes by itself, exactly once, and durable appends survive", async () => {
  const server = await started();
  const journal = await server.connect({ durability: "durable" });
  const key = freshKey();
  const run = await journal.begin(key);
  for (let index = 0; index < 3; index += 1) {
    await run.custom("before", String(index));
  }
  const subscription = journal.subscribe(key, { reconnectTimeoutMs: 60_000 });
  const iterator = subscription[Symbol.asyncIterator]();
  const seen: Envelope[] = [];
  for (let index = 0; index < 4; index += 1) {
    const next = await iterator.next();
    assert.equal(next.done, false);
    seen.push(next.value as Envelope);
  }

  await server.kill("SIGKILL");
  await assert.rejects(run.custom("while down", "x"), ConnectionError);
  await server.restart();

  const { run: resumed } = await journal.resume(key);
  assert.equal(resumed.epoch, 1);
  assert.equal(resumed.nextSeq, 5, "the four acknowledged durable events and the attached are stored");
  for (let index = 0; index < 3; index += 1) {
    await resumed.custom("after", String(index));
  }
  while (seen.length < 8) {
    const next = await iterator.next();
    assert.equal(next.done, false, `the subscription ended after ${seen.length} events`);
    seen.push(next.value as Envelope);
  }
  assert.deepEqual(
    seen.map((envelope) => envelope.seq),
    [0, 1, 2, 3, 4, 5, 6, 7],
  );
  assert.equal(seen[4]?.event.type, "attached");
  assert.ok(subscription.connectionCount >= 2);
  subscription.close();

  const reconnected = await Journal.connect(server.db);
  assert.equal((await reconnected.verify(key)).events, 8);
  reconnected.close();
  journal.close();
});
