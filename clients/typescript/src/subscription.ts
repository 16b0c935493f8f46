/**
 * A run's live subscription as an async iterator of envelopes.
 *
 * Invariant: the envelopes it yields have the seqs `from`, `from + 1`, … with
 * no gap and no duplicate, across every reconnect. When the stream is cut
 * (or the server reports `lagged`), it reconnects with `Last-Event-ID` set to
 * the last seq it yielded, so the server resumes exactly after it; an
 * envelope out of that order from the server is a `ProtocolError`, never
 * skipped. It ends when the server sends `end` (run purged, server shutdown:
 * see `endReason`), when `close()` is called, or when the consumer stops
 * iterating.
 */

import type { IncomingMessage } from "node:http";

import { BusyError, ConnectionError, LaggedError, ProtocolError, RunjournalError } from "./errors.js";
import { runPath, query } from "./paths.js";
import { parseSse, type SseMessage } from "./sse.js";
import type { Transport } from "./transport.js";
import type { Envelope, RunKey } from "./types.js";

/** How a subscription behaves. */
export interface SubscribeOptions {
  /** The first seq to deliver (default 0). */
  from?: number;
  /**
   * Reconnect when the stream is cut or lags (default true); when false, a
   * cut is a `ConnectionError` and a lag a `LaggedError`.
   */
  reconnect?: boolean;
  /** How long to keep trying to reconnect before failing with the last error (default 30 s). */
  reconnectTimeoutMs?: number;
  /** Stops the subscription. */
  signal?: AbortSignal;
  /**
   * How long the stream may stay silent before it counts as cut and is
   * reopened (default 45 s: three of the server's 15 s keep-alives).
   */
  idleTimeoutMs?: number;
}

/** Why a subscription ended. */
export type EndReason = "purged" | "shutdown" | "closed";

const FIRST_RETRY_MS = 20;
const LONGEST_RETRY_MS = 1000;

/** A run's live events, in order, exactly once each. */
export class Subscription implements AsyncIterable<Envelope> {
  private readonly transport: Transport;
  private readonly key: RunKey;
  private readonly reconnect: boolean;
  private readonly reconnectTimeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  private readonly idleTimeoutMs: number;
  private response: IncomingMessage | undefined;
  private closed = false;
  private started = false;
  private delivered: number;
  private ended: EndReason | undefined;
  private connections = 0;
  private lags = 0;

  /** @internal Built by `Journal.subscribe`. */
  constructor(transport: Transport, key: RunKey, options: SubscribeOptions) {
    this.transport = transport;
    this.key = key;
    this.delivered = options.from ?? 0;
    this.reconnect = options.reconnect ?? true;
    this.reconnectTimeoutMs = options.reconnectTimeoutMs ?? 30_000;
    this.signal = options.signal;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 45_000;
    this.signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  /** The seq of the next envelope it delivers. */
  get nextSeq(): number {
    return this.delivered;
  }

  /** Why it ended; `undefined` while it goes on. */
  get endReason(): EndReason | undefined {
    return this.ended;
  }

  /** How many times it connected (1 + reconnects). */
  get connectionCount(): number {
    return this.connections;
  }

  /** How many times the server reported it lagged (each followed by a reconnect). */
  get lagCount(): number {
    return this.lags;
  }

  /** Stops it: iteration ends after the envelope being handled. */
  close(): void {
    this.closed = true;
    this.ended ??= "closed";
    this.response?.destroy();
  }

  [Symbol.asyncIterator](): AsyncIterator<Envelope> {
    if (this.started) {
      throw new TypeError("a Subscription is iterated once; subscribe again from its nextSeq");
    }
    this.started = true;
    return this.envelopes();
  }

  private async *envelopes(): AsyncGenerator<Envelope> {
    let pause = FIRST_RETRY_MS;
    try {
      while (!this.closed) {
        const response = await this.connect();
        if (response === undefined) {
          return;
        }
        const opened = Date.now();
        const first = this.delivered;
        for await (const envelope of this.read(response)) {
          yield envelope;
        }
        // A stream that ends at once with nothing in it is not reopened in a hot loop.
        if (this.delivered === first && Date.now() - opened < LONGEST_RETRY_MS && !this.closed) {
          await new Promise((resolve) => setTimeout(resolve, pause));
          pause = Math.min(pause * 2, LONGEST_RETRY_MS);
        } else {
          pause = FIRST_RETRY_MS;
        }
      }
    } finally {
      this.closed = true;
      this.ended ??= "closed";
      this.response?.destroy();
    }
  }

  /** Opens the stream from `nextSeq`, retrying cut or refused connections until the deadline. */
  private async connect(): Promise<IncomingMessage | undefined> {
    const deadline = Date.now() + this.reconnectTimeoutMs;
    let wait = FIRST_RETRY_MS;
    for (;;) {
      if (this.closed) {
        return undefined;
      }
      try {
        const response = await this.transport.open({
          method: "GET",
          path: runPath(this.key, `/subscribe${query({ from: this.delivered })}`),
          headers: this.resumeHeaders(),
          signal: this.signal,
          idleTimeoutMs: this.idleTimeoutMs,
        });
        this.connections += 1;
        this.response = response;
        return response;
      } catch (error) {
        if (this.closed) {
          return undefined;
        }
        const retryable = error instanceof ConnectionError || error instanceof BusyError;
        if (!retryable || !this.reconnect || Date.now() + wait > deadline) {
          throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, wait));
        wait = Math.min(wait * 2, LONGEST_RETRY_MS);
      }
    }
  }

  /** On a reconnect, `Last-Event-ID` naming the last delivered seq (it overrides `from`). */
  private resumeHeaders(): Record<string, string> {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (this.connections > 0 && this.delivered > 0) {
      headers["last-event-id"] = String(this.delivered - 1);
    }
    return headers;
  }

  /** Yields the stream's envelopes until it ends; returns to reconnect, or marks the end. */
  private async *read(response: IncomingMessage): AsyncGenerator<Envelope> {
    try {
      for await (const message of parseSse(response)) {
        if (message.event === "envelope") {
          const envelope = this.envelope(message);
          this.delivered = envelope.seq + 1;
          yield envelope;
        } else if (message.event === "lagged") {
          // The stream ends; the reconnect resumes after the last delivered seq.
          this.lags += 1;
          response.destroy();
          if (!this.reconnect) {
            throw new LaggedError({
              code: "lagged",
              message: `subscription to ${describeKey(this.key)} lagged behind the server's buffer at seq ${this.delivered}`,
              run: this.key,
              seq: this.delivered,
              details: { next_seq: this.delivered },
            });
          }
          return;
        } else if (message.event === "end") {
          this.ended = endReason(message);
          this.closed = true;
          return;
        }
      }
    } catch (error) {
      if (error instanceof RunjournalError) {
        throw error;
      }
      if (this.closed) {
        return;
      }
      // The stream was cut: fall through to reconnect.
    }
    if (this.closed) {
      return;
    }
    if (!this.reconnect) {
      throw new ConnectionError({
        code: "connection",
        message: `subscription to ${describeKey(this.key)} cut at seq ${this.delivered}`,
        run: this.key,
        seq: this.delivered,
      });
    }
  }

  private envelope(message: SseMessage): Envelope {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(message.data) as Envelope;
    } catch (cause) {
      throw new ProtocolError(
        { code: "protocol", message: `subscription sent an envelope that is not JSON`, run: this.key, seq: this.delivered },
        null,
        { cause },
      );
    }
    if (envelope.seq !== this.delivered) {
      throw new ProtocolError({
        code: "protocol",
        message: `subscription to ${describeKey(this.key)} sent seq ${envelope.seq} where seq ${this.delivered} was next`,
        run: this.key,
        seq: this.delivered,
        details: { expected: this.delivered, actual: envelope.seq },
      });
    }
    return envelope;
  }
}

function endReason(message: SseMessage): EndReason {
  try {
    const reason = (JSON.parse(message.data) as { reason?: unknown }).reason;
    return reason === "purged" ? "purged" : "shutdown";
  } catch {
    return "shutdown";
  }
}

function describeKey(key: RunKey): string {
  return `${key.goal}/${key.episode}/${key.agent}`;
}
