// Subscriptions through a real server: live events in order, and across a
// cut connection every event exactly once (the client resumes with
// Last-Event-ID).

import assert from "node:assert/strict";
import * as http from "node:http";
import { after, before, test } from "node:test";

import {
  ConnectionError,
  Journal,
  LaggedError,
  runPath,
  type Envelope,
  type RunKey,
  type Subscription,
} from "../src/index.js";
import { CuttingProxy } from "./proxy.js";
import { freshKey, poll, Server } from "./server.js";

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

/** Reads `count` envelopes from `subscription`'s iterator. */
async function take(iterator: AsyncIterator<Envelope>, count: number): Promise<Envelope[]> {
  const taken: Envelope[] = [];
  while (taken.length < count) {
    const next = await iterator.next();
    assert.equal(next.done, false, `the subscription ended after ${taken.length} of ${count}`);
    taken.push(next.value as Envelope);
  }
  return taken;
}

function seqs(envelopes: Envelope[]): number[] {
  return envelopes.map((envelope) => envelope.seq);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, index) => from + index);
}

test("a subscription from 0 yields the stored events, then live ones, in order", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  await run.custom("before", "1");
  const subscription = journal.subscribe(key, { from: 0 });
  const iterator = subscription[Symbol.asyncIterator]();
  const stored = await take(iterator, 2);
  assert.deepEqual(seqs(stored), [0, 1]);
  assert.equal(stored[0]?.event.type, "run_started");

  const writes = Promise.all([run.custom("live", "2"), run.custom("live", "3"), run.custom("live", "4")]);
  const live = await take(iterator, 3);
  await writes;
  assert.deepEqual(seqs(live), [2, 3, 4]);
  assert.deepEqual(
    live.map((envelope) => envelope.hash),
    (await journal.events(key, { from: 2 })).envelopes.map((envelope) => envelope.hash),
  );
  subscription.close();
  assert.equal((await iterator.next()).done, true);
  assert.equal(subscription.endReason, "closed");
});

test("a subscription from a seq starts exactly there", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  for (let index = 0; index < 4; index += 1) {
    await run.custom("n", String(index));
  }
  const subscription = journal.subscribe(key, { from: 3 });
  const iterator = subscription[Symbol.asyncIterator]();
  assert.deepEqual(seqs(await take(iterator, 2)), [3, 4]);
  await iterator.return?.();
  assert.equal(subscription.endReason, "closed");
});

test("a cut subscription reconnects with Last-Event-ID and sees every event exactly once", async () => {
  const proxy = await CuttingProxy.start(server.socketPath);
  const viaProxy = await Journal.connect(proxy.socketPath);
  try {
    const key = freshKey();
    const run = await journal.begin(key);
    for (let index = 0; index < 4; index += 1) {
      await run.custom("before", String(index));
    }
    const subscription = viaProxy.subscribe(key, { from: 0 });
    const iterator = subscription[Symbol.asyncIterator]();
    const seen = await take(iterator, 5);
    assert.deepEqual(seqs(seen), range(0, 5));
    assert.equal(subscription.connectionCount, 1);

    proxy.cutAll();
    for (let index = 0; index < 5; index += 1) {
      await run.custom("while cut", String(index));
    }
    seen.push(...(await take(iterator, 5)));
    assert.ok(subscription.connectionCount >= 2, "the subscription did not reconnect");
    for (let index = 0; index < 3; index += 1) {
      await run.custom("after", String(index));
    }
    seen.push(...(await take(iterator, 3)));
    assert.deepEqual(seqs(seen), range(0, 13));

    const stored = (await journal.events(key)).envelopes;
    assert.deepEqual(
      seen.map((envelope) => envelope.hash),
      stored.map((envelope) => envelope.hash),
    );
    const resumeRequest = proxy.sent.find((sent) => /^GET [^ ]*\/subscribe/.test(sent) && /last-event-id: 4\r\n/i.test(sent));
    assert.ok(resumeRequest !== undefined, `no reconnect named Last-Event-ID: 4 in ${JSON.stringify(proxy.sent)}`);
    subscription.close();
  } finally {
    viaProxy.close();
    await proxy.stop();
  }
});

test("repeated cuts while appending lose and repeat nothing", async () => {
  const proxy = await CuttingProxy.start(server.socketPath);
  const viaProxy = await Journal.connect(proxy.socketPath);
  try {
    const key = freshKey();
    const run = await journal.begin(key);
    const total = 60;
    const subscription: Subscription = viaProxy.subscribe(key);
    const seen: Envelope[] = [];
    const reader = (async () => {
      for await (const envelope of subscription) {
        seen.push(envelope);
        if (seen.length === total) {
          break;
        }
      }
    })();
    for (let index = 1; index < total; index += 1) {
      await run.custom("n", String(index));
      if (index % 10 === 0) {
        proxy.cutAll();
      }
    }
    const done = await poll(() => seen.length === total, 30_000);
    assert.ok(done, `saw ${seen.length} of ${total}`);
    await reader;
    assert.deepEqual(seqs(seen), range(0, total));
    assert.ok(subscription.connectionCount >= 2, "no cut happened while streaming");
  } finally {
    viaProxy.close();
    await proxy.stop();
  }
});

test("the server resumes after Last-Event-ID, which overrides from", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  for (let index = 0; index < 4; index += 1) {
    await run.custom("n", String(index));
  }
  const ids = await rawSubscribeIds(key, "?from=0", { "last-event-id": "2" }, 2);
  assert.deepEqual(ids, ["3", "4"]);
});

/** The first `count` SSE ids of a raw subscribe request. */
function rawSubscribeIds(
  key: RunKey,
  search: string,
  headers: Record<string, string>,
  count: number,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      socketPath: server.socketPath,
      path: runPath(key, `/subscribe${search}`),
      headers: { accept: "text/event-stream", ...headers },
    });
    request.on("response", (response) => {
      assert.equal(response.statusCode, 200);
      assert.match(String(response.headers["content-type"]), /^text\/event-stream/);
      let text = "";
      response.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
        const ids = [...text.matchAll(/^id: ?(.*)$/gm)].map((match) => match[1] ?? "");
        if (ids.length >= count) {
          request.destroy();
          resolve(ids.slice(0, count));
        }
      });
      response.on("error", () => undefined);
    });
    request.on("error", (error) => {
      if (!request.destroyed) {
        reject(error);
      }
    });
    request.end();
  });
}

test("purging a run ends its subscription with reason purged", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  await run.finish({ completed: {} });
  const subscription = journal.subscribe(key);
  const iterator = subscription[Symbol.asyncIterator]();
  assert.deepEqual(seqs(await take(iterator, 2)), [0, 1]);
  const report = await journal.purge({ explicit: [key] });
  assert.deepEqual(
    report.purged.map((purged) => purged.run),
    [key],
  );
  assert.equal((await iterator.next()).done, true);
  assert.equal(subscription.endReason, "purged");
});

test("a subscriber that falls behind is told it lagged and resumes by itself, losing and repeating nothing", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  const subscription = journal.subscribe(key);
  const iterator = subscription[Symbol.asyncIterator]();
  const seen = await take(iterator, 1);
  // Far more than the server's buffer (1024 events) and the socket's hold, unread.
  const batches = 20;
  const batchSize = 500;
  for (let batch = 0; batch < batches; batch += 1) {
    await run.append(
      Array.from({ length: batchSize }, (_, index) => ({ type: "custom" as const, kind: "n", data: `${batch}/${index}` })),
    );
  }
  seen.push(...(await take(iterator, batches * batchSize)));
  assert.deepEqual(seqs(seen), range(0, batches * batchSize + 1));
  assert.ok(subscription.lagCount >= 1, "the subscriber never lagged: nothing was tested");
  assert.equal(subscription.connectionCount, subscription.lagCount + 1);
  subscription.close();
});

test("without reconnect, a lag is LaggedError naming the next seq and a cut is ConnectionError", async () => {
  const key = freshKey();
  const run = await journal.begin(key);
  const lagging = journal.subscribe(key, { reconnect: false });
  const iterator = lagging[Symbol.asyncIterator]();
  await take(iterator, 1);
  for (let batch = 0; batch < 20; batch += 1) {
    await run.append(Array.from({ length: 500 }, () => ({ type: "custom" as const, kind: "n", data: "x" })));
  }
  const lag = await (async () => {
    for (;;) {
      const next = await iterator.next();
      assert.equal(next.done, false);
    }
  })().then(
    () => assert.fail("the lagging subscription ended without an error"),
    (caught: unknown) => caught,
  );
  assert.ok(lag instanceof LaggedError, `expected LaggedError, got ${String(lag)}`);
  assert.equal(lag.code, "lagged");
  assert.equal(lag.details.next_seq, lagging.nextSeq);

  const proxy = await CuttingProxy.start(server.socketPath);
  const viaProxy = await Journal.connect(proxy.socketPath);
  try {
    const cut = viaProxy.subscribe(key, { reconnect: false });
    const cutIterator = cut[Symbol.asyncIterator]();
    await take(cutIterator, 1);
    proxy.cutAll();
    await assert.rejects(
      (async () => {
        for (;;) {
          await cutIterator.next();
        }
      })(),
      ConnectionError,
    );
  } finally {
    viaProxy.close();
    await proxy.stop();
  }
});

test("subscribeAll yields every run's live events as they are appended", async () => {
  const first = freshKey();
  const second = freshKey();
  const all = journal.subscribeAll();
  const pending = all.next();
  // The stream opens asynchronously: append until the subscription shows an event.
  const runA = await journal.begin(first);
  const runB = await journal.begin(second);
  let appended = 0;
  const writer = (async () => {
    while (appended < 200) {
      await runA.custom("a", String(appended));
      await runB.custom("b", String(appended));
      appended += 1;
    }
  })();
  const seen: Envelope[] = [];
  let next = await pending;
  while (!next.done) {
    seen.push(next.value);
    if (seen.some((envelope) => envelope.run.goal === first.goal) && seen.some((envelope) => envelope.run.goal === second.goal)) {
      break;
    }
    next = await all.next();
  }
  await all.return(undefined);
  await writer;
  for (const goal of [first.goal, second.goal]) {
    const own = seen.filter((envelope) => envelope.run.goal === goal).map((envelope) => envelope.seq);
    assert.ok(own.length > 0, `no event of ${goal}`);
    assert.deepEqual(own, range(own[0] ?? 0, (own[0] ?? 0) + own.length), "a run's events arrive in seq order, gapless");
  }
});

test("a stream that goes silent past the idle timeout is reopened with nothing lost or repeated", async () => {
  const proxy = await CuttingProxy.start(server.socketPath);
  const viaProxy = await Journal.connect(proxy.socketPath);
  try {
    const key = freshKey();
    const run = await journal.begin(key);
    const subscription = viaProxy.subscribe(key, { idleTimeoutMs: 300 });
    const iterator = subscription[Symbol.asyncIterator]();
    const seen = await take(iterator, 1);
    proxy.stallAll();
    for (let index = 0; index < 5; index += 1) {
      await run.custom("while silent", String(index));
    }
    seen.push(...(await take(iterator, 5)));
    assert.deepEqual(seqs(seen), range(0, 6));
    assert.ok(subscription.connectionCount >= 2, "the silent stream was never reopened");
    subscription.close();
  } finally {
    viaProxy.close();
    await proxy.stop();
  }
});
