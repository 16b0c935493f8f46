/**
 * The JSON shapes of the served API v1: keys, events, envelopes, the resume
 * state and run records, exactly as the server writes and reads them.
 *
 * Seqs, epochs and timestamps are JSON numbers: exact in JavaScript up to
 * 2^53 - 1, far beyond any run's length.
 */

/** The stable identity of a run: `(goal, episode, agent)`. */
export interface RunKey {
  /** The task being worked on, shared by every attempt at it (1–256 bytes UTF-8). */
  goal: string;
  /** The attempt number inside the goal (u32). */
  episode: number;
  /** A stable id of the agent inside the episode (1–128 bytes UTF-8). */
  agent: string;
}

/** How task-claim conflicts are resolved. */
export type ConflictStrategy = "first_claim" | "highest_confidence" | "highest_priority" | "escalate";

/** What is known about a run when it starts (`run_started.meta`). */
export interface RunMeta {
  agent_name?: string | null;
  caller?: string | null;
  prompt?: string | null;
  model?: string | null;
  backend?: string | null;
  parent?: RunKey | null;
  forked_from?: { run: RunKey; seq: number } | null;
  conflict_strategy?: ConflictStrategy | null;
  labels?: Record<string, string> | null;
}

/** Who speaks in a transcript message. */
export type Role = "system" | "user" | "assistant" | "tool";

/** A transcript message. */
export interface Message {
  role: Role;
  content: string;
  name?: string | null;
  tool_call_id?: string | null;
}

/** A failure: a kind and a message. */
export interface ErrorInfo {
  kind: string;
  message: string;
}

/** Which detector reported a compaction. */
export type CompactionSource = "structured" | "scraped";

/** One fact of a run: the `type`-tagged event object of the journal format. */
export type Event =
  | { type: "run_started"; meta: RunMeta }
  | { type: "attached"; owner: string }
  | { type: "step"; messages: Message[] }
  | { type: "turn_completed" }
  | { type: "phase_started"; index: number; name: string }
  | { type: "phase_completed"; index: number; name: string; output: string }
  | {
      type: "compaction_started";
      id?: string | null;
      source: CompactionSource;
      messages_before?: number | null;
      tokens_before?: number | null;
    }
  | {
      type: "compaction_done";
      id?: string | null;
      source: CompactionSource;
      summary?: string | null;
      messages_after?: number | null;
      tokens_after?: number | null;
    }
  | {
      type: "handoff_sent";
      id: string;
      from: string;
      to: string;
      generation: number;
      version: string;
      content_hash: string;
      timeout_ms: number;
    }
  | { type: "handoff_acked"; id: string; by: string }
  | { type: "handoff_rejected"; id: string; by: string; reason: string }
  | { type: "handoff_timed_out"; id: string }
  | { type: "task_claimed"; task: string; agent: string; priority: number; confidence: number }
  | {
      type: "task_completed";
      task: string;
      agent: string;
      result: "success" | "partial" | "failed";
      summary?: string | null;
    }
  | { type: "agent_died"; reason: string; exit_code?: number | null }
  | { type: "teardown"; resource: string; error?: string | null }
  | { type: "run_completed"; output?: string | null }
  | { type: "run_failed"; error: ErrorInfo; cleanup_errors: ErrorInfo[] }
  | { type: "run_interrupted"; cause: "shutdown" }
  | { type: "custom"; kind: string; data: string }
  | {
      type: "usage";
      input_tokens?: number | null;
      output_tokens?: number | null;
      cost_usd?: number | null;
      counters?: Record<string, number> | null;
    }
  | {
      type: "segment_rotated";
      reason: "session_load" | "session_changed";
      session_id?: string | null;
      provenance?: Record<string, string> | null;
    }
  | { type: "resource_acquired"; resource: string };

/** Every event `type` name. */
export type EventType = Event["type"];

/** One record of a run's log: an event with its place in the chain. */
export interface Envelope {
  run: RunKey;
  /** 0-based, gapless, strictly increasing per run. */
  seq: number;
  /** The writer epoch that appended it. */
  epoch: number;
  /** Unix milliseconds when it was appended. */
  ts: number;
  /** The blake3 chain hash, lowercase hex. */
  hash: string;
  event: Event;
}

/** Where a run stands. */
export type RunStatus = "running" | "completed" | "failed" | "interrupted" | "superseded";

/** The resume state: the fold of a run's events (docs/resume-state.md). */
export interface ResumeState {
  run: RunKey;
  status: RunStatus;
  recoverable: boolean;
  meta: RunMeta;
  active_ms: number;
  wall_ms: number;
  last_seq: number | null;
  head: string;
  epoch: number;
  iteration: number;
  segment: number;
  transcript: Message[];
  compaction: { active: boolean; count: number; gate: CompactionSource | null };
  phases: {
    completed: { index: number; name: string; output: string }[];
    active: { index: number; name: string } | null;
  };
  handoffs: {
    id: string;
    from: string;
    to: string;
    status: "pending" | "acknowledged" | "rejected" | "timed_out";
    version: string;
  }[];
  handoff_success_rate: number | null;
  tasks: {
    task: string;
    status: "claimed" | "completed" | "escalated";
    claimed_by: string | null;
    contenders: string[];
  }[];
  died: { reason: string; exit_code: number | null } | null;
  output: string | null;
  failure: { error: ErrorInfo; cleanup_errors: ErrorInfo[] } | null;
  usage: { input_tokens: number; output_tokens: number; cost_usd: number; counters: Record<string, number> };
  segments: { index: number; opened_seq: number; closed_seq: number; end_reason: string }[];
  provenance: Record<string, string>;
  resources: { resource: string; acquired_seq: number | null; torn_down: boolean; error: string | null }[];
  anomalies: { seq: number; kind: string; detail: string }[];
}

/** What a client needs to keep appending to a run. */
export interface Handle {
  run: RunKey;
  epoch: number;
  next_seq: number;
  head: string;
}

/** A run's record (run info): what the store keeps besides its events. */
export interface RunRecord {
  /** The store's id of the run. */
  id: number;
  /** The run's key. */
  key: RunKey;
  /** Unix milliseconds when the run was created. */
  created_ts: number;
  /** The end of its own log. */
  head: {
    /** The seq the next event gets (the number of events in its own log). */
    next_seq: number;
    /** The chain hash of the last event. */
    hash: string;
    /** The run's current writer epoch. */
    epoch: number;
    /** Unix milliseconds of the last event. */
    last_ts: number;
  };
  /** Its status after its last event. */
  status: RunStatus;
  /** The parent prefix, for a forked run. */
  fork: { parent: number; parent_key: RunKey; seq: number; hash: string } | null;
}

/** The result of verifying a run's chain. */
export interface VerifyReport {
  run: RunKey;
  /** Events verified (its own log). */
  events: number;
  /** The run's head hash. */
  head: string;
}

/** How a run ended, in the form `finish` sends. */
export type Outcome =
  | { completed: { output?: string | null } }
  | { failed: { error: ErrorInfo; cleanup_errors: ErrorInfo[] } }
  | { interrupted: Record<string, never> };

/** Builders for {@link Outcome}. */
export const Outcome = {
  /** The run succeeded: `run_completed`. */
  completed(output?: string): Outcome {
    return { completed: output === undefined ? {} : { output } };
  },
  /** The run failed: `run_failed`, cleanup failures kept apart from the primary one. */
  failed(kind: string, message: string, cleanupErrors: ErrorInfo[] = []): Outcome {
    return { failed: { error: { kind, message }, cleanup_errors: cleanupErrors } };
  },
  /** The process is shutting down: `run_interrupted`, left for recovery. */
  interrupted(): Outcome {
    return { interrupted: {} };
  },
};

/** When a write is acknowledged: after the owner's sync, or at once. */
export type Durability = "durable" | "buffered";

/** Which refusals an append applies: the raw journal rules, or also the typed methods'. */
export type Checks = "raw" | "typed";

/** What `resume` may require of the stored `meta`; a difference is a `MismatchError`. */
export interface Expect {
  backend?: string;
  model?: string;
  agent_name?: string;
}

/** Which runs `runs` lists. */
export interface RunFilter {
  status?: RunStatus;
  goal?: string;
  agent?: string;
  parent?: RunKey;
  limit?: number;
}

/** A page of envelopes; `next` is where the following page starts, `null` at the end. */
export interface EnvelopePage {
  envelopes: Envelope[];
  next: number | null;
}

/** What `GET /v1/health` answers. */
export interface Health {
  server: string;
  version: string;
  api: number;
}

/** What an operator action wrote. */
export interface OperatorReport {
  run: RunKey;
  /** The seq of the operator's `attached`. */
  attached_seq: number;
  /** The epoch the action opened. */
  epoch: number;
  /** The run's last seq after the action. */
  last_seq: number;
  /** The run's status after the action. */
  status: RunStatus;
}

/** Which runs a purge removes (ages in milliseconds). */
export interface PurgePolicy {
  completed_older_than_ms?: number;
  keep_newest_episodes?: number;
  explicit?: RunKey[];
}

/** What a purge removed. */
export interface PurgeReport {
  dry_run: boolean;
  purged: { run: RunKey; events: number }[];
  kept: { run: RunKey; reason: string }[];
  freed_bytes: number;
}

/** What an import stored. */
export interface ImportReport {
  runs: { run: RunKey; events: number; status: RunStatus; epoch: number; head: string }[];
  events: number;
  lines: number;
}

/** How two runs differ. */
export interface RunDiff {
  /** Leading history events the runs share. */
  common: number;
  /** Run A's first event after the common prefix. */
  a: Envelope | null;
  /** Run B's first event after the common prefix. */
  b: Envelope | null;
  /** The state fields that differ. */
  state_differences: { field: string; a: unknown; b: unknown }[];
}
