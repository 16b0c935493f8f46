/**
 * Server-Sent Events framing (the WHATWG event-stream format): lines ending
 * in LF, CRLF or CR; `field: value` lines accumulate into one message that a
 * blank line dispatches; lines starting with `:` are comments (keep-alives).
 * A message cut by the end of the stream is never dispatched.
 */

/** One dispatched message. */
export interface SseMessage {
  /** The `id` field, when the message had one. */
  id: string | undefined;
  /** The `event` field (`message` when absent). */
  event: string;
  /** The `data` lines joined by LF. */
  data: string;
}

/** Splits a byte stream into SSE messages. */
export async function* parseSse(chunks: AsyncIterable<Buffer | string>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder("utf-8");
  let buffer = "";
  let id: string | undefined;
  let event = "";
  let data: string[] = [];
  let sawData = false;
  for await (const chunk of chunks) {
    buffer += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
    for (;;) {
      const end = lineEnd(buffer);
      if (end === undefined) {
        break;
      }
      const line = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end.length);
      if (line === "") {
        if (sawData || event !== "" || id !== undefined) {
          yield { id, event: event === "" ? "message" : event, data: data.join("\n") };
        }
        id = undefined;
        event = "";
        data = [];
        sawData = false;
        continue;
      }
      if (line.startsWith(":")) {
        continue;
      }
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) {
        value = value.slice(1);
      }
      if (field === "id") {
        id = value;
      } else if (field === "event") {
        event = value;
      } else if (field === "data") {
        data.push(value);
        sawData = true;
      }
    }
  }
}

/** Where the first line ending in `buffer` is, and how long it is; `undefined` if none is complete. */
function lineEnd(buffer: string): { index: number; length: number } | undefined {
  const match = /\r\n|\r|\n/.exec(buffer);
  if (match === null) {
    return undefined;
  }
  if (match[0] === "\r" && match.index === buffer.length - 1) {
    // A CR at the end may be the first half of a CRLF: wait for more.
    return undefined;
  }
  return { index: match.index, length: match[0].length };
}
