// The SSE framing rules the subscription relies on, without a server.

import assert from "node:assert/strict";
import { test } from "node:test";

import { parseSse, type SseMessage } from "../src/index.js";

async function parse(...chunks: string[]): Promise<SseMessage[]> {
  const messages: SseMessage[] = [];
  async function* source(): AsyncGenerator<Buffer> {
    for (const chunk of chunks) {
      yield Buffer.from(chunk, "utf8");
    }
  }
  for await (const message of parseSse(source())) {
    messages.push(message);
  }
  return messages;
}

test("a blank line dispatches the fields before it", async () => {
  const messages = await parse("id: 3\nevent: envelope\ndata: {\"seq\":3}\n\n");
  assert.deepEqual(messages, [{ id: "3", event: "envelope", data: '{"seq":3}' }]);
});

test("comments are keep-alives and dispatch nothing", async () => {
  const messages = await parse(": keep-alive\n\n", "id: 1\nevent: envelope\ndata: x\n\n");
  assert.deepEqual(messages, [{ id: "1", event: "envelope", data: "x" }]);
});

test("CRLF and CR end lines like LF, even when a CRLF is split between chunks", async () => {
  const messages = await parse("id: 1\r", "\nevent: a\rdata: x\r\n\r\n");
  assert.deepEqual(messages, [{ id: "1", event: "a", data: "x" }]);
});

test("data lines join with LF and a message without event is a message", async () => {
  const messages = await parse("data: one\ndata: two\n\n");
  assert.deepEqual(messages, [{ id: undefined, event: "message", data: "one\ntwo" }]);
});

test("a message cut by the end of the stream is never dispatched", async () => {
  const messages = await parse("id: 1\nevent: envelope\ndata: a\n\nid: 2\nevent: envelope\ndata: b\n");
  assert.deepEqual(
    messages.map((message) => message.id),
    ["1"],
  );
});

test("a multi-byte character split between chunks decodes whole", async () => {
  const bytes = Buffer.from("data: é\n\n", "utf8");
  async function* source(): AsyncGenerator<Buffer> {
    yield bytes.subarray(0, 7);
    yield bytes.subarray(7);
  }
  const messages: SseMessage[] = [];
  for await (const message of parseSse(source())) {
    messages.push(message);
  }
  assert.deepEqual(messages, [{ id: undefined, event: "message", data: "é" }]);
});
