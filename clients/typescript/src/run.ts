/**
 * A writable run: the client side of a handle. Every append carries the
 * handle's epoch and the seq it expects to write; the server refuses a stale
 * epoch (`FencedError`) or a wrong seq (`ConflictError`) and writes nothing.
 * Appends through one `Run` are sent one after another, in call order, so
 * their expected seqs follow each other. The view (`epoch`, `nextSeq`,
 * `head`) only moves on an acknowledged write: a failed append leaves it as
 * stored.
 */

import { ProtocolError } from "./errors.js";
import { runPath } from "./paths.js";
import type { Transport } from "./transport.js";
import type {
  Checks,
  CompactionSource,
  Durability,
  Envelope,
  Event,
  Handle,
  Message,
  Outcome,
  RunKey,
} from "./types.js";

/** Per-write options. */
export interface WriteOptions {
  /** Overrides the journal's durability for this write. */
  durability?: Durability;
}

/** Options of a raw `append`. */
export interface AppendOptions extends WriteOptions {
  /** `"typed"` also applies the typed methods' refusals (default `"raw"`). */
  checks?: Checks;
}

/** What a compaction signal knows. */
export interface CompactionInfo {
  id?: string;
  /** Messages in the context (before a start, after a done). */
  messages?: number;
  /** Tokens in the context (before a start, after a done). */
  tokens?: number;
  /** The summary that opens the new segment (done only). */
  summary?: string;
}

/** A handoff to another agent. */
export interface Handoff {
  id: string;
  from: string;
  to: string;
  generation: number;
  version: string;
  contentHash: string;
  timeoutMs: number;
}

/** Resources consumed since the previous `usage`. */
export interface Usage {
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  counters?: Record<string, number>;
}

interface WriteAnswer {
  envelopes: Envelope[];
  handle: Handle;
}

/** A run this client may append to, as of its handle. */
export class Run {
  private handle: Handle;
  private readonly transport: Transport;
  private readonly durability: Durability | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  /** @internal Built by `Journal`; not for direct use. */
  constructor(transport: Transport, handle: Handle, durability: Durability | undefined) {
    this.transport = transport;
    this.handle = handle;
    this.durability = durability;
  }

  /** The run's key. */
  get key(): RunKey {
    return this.handle.run;
  }

  /** The handle's epoch: every append carries it. */
  get epoch(): number {
    return this.handle.epoch;
  }

  /** The seq the next append writes. */
  get nextSeq(): number {
    return this.handle.next_seq;
  }

  /** The chain hash of the last acknowledged event (lowercase hex). */
  get head(): string {
    return this.handle.head;
  }

  /** The handle as of the last acknowledged write, to pass to another process (`Journal.attach`). */
  toHandle(): Handle {
    return { ...this.handle, run: { ...this.handle.run } };
  }

  /** Appends `events` as one atomic batch at `nextSeq`; resolves with their envelopes. */
  append(events: Event[], options: AppendOptions = {}): Promise<Envelope[]> {
    return this.write("/events", options, (base) => ({ ...base, events, checks: options.checks }));
  }

  /** Records the run's outcome: `run_completed`, `run_failed` or `run_interrupted`. */
  finish(outcome: Outcome, options: WriteOptions = {}): Promise<Envelope[]> {
    return this.write("/finish", options, (base) => ({ ...base, outcome }));
  }

  /** Records a step: its messages join the transcript. */
  step(messages: Message[], options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "step", messages }, options);
  }

  /** Records the end of a turn. */
  turnCompleted(options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "turn_completed" }, options);
  }

  /** Records the start of phase `index`. */
  phaseStarted(index: number, name: string, options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "phase_started", index, name }, options);
  }

  /** Records the completion of phase `index` with its output. */
  phaseCompleted(index: number, name: string, output: string, options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "phase_completed", index, name, output }, options);
  }

  /** Records the start of a context compaction. */
  compactionStarted(source: CompactionSource, info: CompactionInfo = {}, options?: WriteOptions): Promise<Envelope> {
    return this.typed(
      {
        type: "compaction_started",
        id: info.id ?? null,
        source,
        messages_before: info.messages ?? null,
        tokens_before: info.tokens ?? null,
      },
      options,
    );
  }

  /** Records the end of a context compaction: a new segment starts. */
  compactionDone(source: CompactionSource, info: CompactionInfo = {}, options?: WriteOptions): Promise<Envelope> {
    return this.typed(
      {
        type: "compaction_done",
        id: info.id ?? null,
        source,
        summary: info.summary ?? null,
        messages_after: info.messages ?? null,
        tokens_after: info.tokens ?? null,
      },
      options,
    );
  }

  /** Records a handoff sent to another agent. */
  handoffSent(handoff: Handoff, options?: WriteOptions): Promise<Envelope> {
    return this.typed(
      {
        type: "handoff_sent",
        id: handoff.id,
        from: handoff.from,
        to: handoff.to,
        generation: handoff.generation,
        version: handoff.version,
        content_hash: handoff.contentHash,
        timeout_ms: handoff.timeoutMs,
      },
      options,
    );
  }

  /** Records the receiver's ack; refused unless `by` is the receiver and the handoff is pending. */
  handoffAcked(id: string, by: string, options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "handoff_acked", id, by }, options);
  }

  /** Records the receiver's rejection; refused unless `by` is the receiver and the handoff is pending. */
  handoffRejected(id: string, by: string, reason: string, options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "handoff_rejected", id, by, reason }, options);
  }

  /** Records that a pending handoff timed out. */
  handoffTimedOut(id: string, options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "handoff_timed_out", id }, options);
  }

  /** Records a claim on a task (priority 0–3, confidence 0.0–1.0). */
  taskClaimed(task: string, agent: string, priority: number, confidence: number, options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "task_claimed", task, agent, priority, confidence }, options);
  }

  /** Records a task's completion; refused unless `agent` holds the task. */
  taskCompleted(
    task: string,
    agent: string,
    result: "success" | "partial" | "failed",
    summary?: string,
    options?: WriteOptions,
  ): Promise<Envelope> {
    return this.typed({ type: "task_completed", task, agent, result, summary: summary ?? null }, options);
  }

  /** Records that the agent's process died (the run stays recoverable). */
  agentDied(reason: string, exitCode?: number, options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "agent_died", reason, exit_code: exitCode ?? null }, options);
  }

  /** Records that a resource was acquired; a later `teardown` releases it. */
  resourceAcquired(resource: string, options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "resource_acquired", resource }, options);
  }

  /** Records the teardown of a resource, with its error if it failed. */
  teardown(resource: string, error?: string, options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "teardown", resource, error: error ?? null }, options);
  }

  /** Records resources consumed since the previous `usage`; the state sums them. */
  usage(usage: Usage, options?: WriteOptions): Promise<Envelope> {
    return this.typed(
      {
        type: "usage",
        input_tokens: usage.inputTokens ?? null,
        output_tokens: usage.outputTokens ?? null,
        cost_usd: usage.costUsd ?? null,
        counters: usage.counters ?? null,
      },
      options,
    );
  }

  /** Records that the runtime's session changed: the segment ends and the next starts empty. */
  segmentRotated(
    reason: "session_load" | "session_changed",
    sessionId?: string,
    provenance?: Record<string, string>,
    options?: WriteOptions,
  ): Promise<Envelope> {
    return this.typed(
      { type: "segment_rotated", reason, session_id: sessionId ?? null, provenance: provenance ?? null },
      options,
    );
  }

  /** Records an application-defined fact. */
  custom(kind: string, data: string, options?: WriteOptions): Promise<Envelope> {
    return this.typed({ type: "custom", kind, data }, options);
  }

  private async typed(event: Event, options: WriteOptions = {}): Promise<Envelope> {
    const [envelope] = await this.append([event], { ...options, checks: "typed" });
    if (envelope === undefined) {
      throw new ProtocolError({
        code: "protocol",
        message: `the server acknowledged ${event.type} without its envelope`,
        run: this.handle.run,
      });
    }
    return envelope;
  }

  /** Sends one write after the previous ones settled, and moves the view to the acknowledged handle. */
  private write(
    suffix: string,
    options: WriteOptions,
    body: (base: { epoch: number; expected_seq: number; durability: Durability | undefined }) => object,
  ): Promise<Envelope[]> {
    const next = this.queue.then(async () => {
      const answer = await this.transport.json<WriteAnswer>({
        method: "POST",
        path: runPath(this.handle.run, suffix),
        body: body({
          epoch: this.handle.epoch,
          expected_seq: this.handle.next_seq,
          durability: options.durability ?? this.durability,
        }),
      });
      this.handle = answer.handle;
      return answer.envelopes;
    });
    this.queue = next.catch(() => undefined);
    return next;
  }
}
