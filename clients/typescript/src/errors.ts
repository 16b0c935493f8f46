/**
 * Typed errors: every failure the server reports is a {@link RunjournalError}
 * whose `code` is the server's stable code, and whose class is chosen by that
 * code, so a caller can `instanceof` the family it handles and read `code` for
 * the exact case. Failures of the transport itself (no socket, connection
 * refused or cut) are {@link ConnectionError}s; a response that breaks the
 * wire contract is a {@link ProtocolError}. Nothing is swallowed.
 */

import type { RunKey } from "./types.js";

/** The fields of the server's error body (`{"error": {...}}`). */
export interface ErrorBody {
  code: string;
  message: string;
  run?: RunKey | null;
  seq?: number | null;
  details?: Record<string, unknown> | null;
}

/** The base of every runjournal error. */
export class RunjournalError extends Error {
  /** The stable code (`fenced`, `conflict`, `not_found`, …). */
  readonly code: string;
  /** The run the error is about, when there is one. */
  readonly run: RunKey | null;
  /** The seq the error is about, when there is one. */
  readonly seq: number | null;
  /** The fields a caller needs to act on the error (e.g. fenced: `epoch`, `current`). */
  readonly details: Record<string, unknown>;
  /** The HTTP status of the response, or `null` when no response came. */
  readonly status: number | null;

  constructor(body: ErrorBody, status: number | null = null, options?: { cause?: unknown }) {
    super(body.message, options);
    this.name = new.target.name;
    this.code = body.code;
    this.run = body.run ?? null;
    this.seq = body.seq ?? null;
    this.details = body.details ?? {};
    this.status = status;
  }
}

/** The handle's epoch is stale: a newer resume owns the run. Nothing was written. */
export class FencedError extends RunjournalError {
  /** The epoch the append carried. */
  get epoch(): number | undefined {
    return numberField(this.details, "epoch");
  }
  /** The run's newest epoch. */
  get current(): number | undefined {
    return numberField(this.details, "current");
  }
}

/** The expected seq is not the run's next seq. Nothing was written. */
export class ConflictError extends RunjournalError {
  /** The seq the append expected to write. */
  get expected(): number | undefined {
    return numberField(this.details, "expected");
  }
  /** The run's actual next seq. */
  get actual(): number | undefined {
    return numberField(this.details, "actual");
  }
}

/** No such run (or no recoverable episode, for `resumeLatest`). */
export class NotFoundError extends RunjournalError {}

/** The run is completed or failed: it cannot be resumed or appended to. */
export class FinishedError extends RunjournalError {}

/** The run was superseded by a rewind: never resumed again. */
export class SupersededError extends RunjournalError {}

/** A run with that key exists already. */
export class AlreadyExistsError extends RunjournalError {}

/** A resume expectation differs from the stored meta (field, stored, expected in `details`). */
export class MismatchError extends RunjournalError {}

/** An event or a request body is over the server's limit. */
export class TooLargeError extends RunjournalError {}

/** The request or one of its events breaks the contract (bad JSON, key, event, order, rule). */
export class InvalidError extends RunjournalError {}

/** The TCP request carried no token or a wrong one. */
export class UnauthorizedError extends RunjournalError {}

/** The server refused a new connection: its connection limit is reached. */
export class BusyError extends RunjournalError {}

/** The server gave up waiting for the request. */
export class RequestTimeoutError extends RunjournalError {}

/** The journal can no longer write (poisoned, writer stopped): close and re-open the owner. */
export class UnavailableError extends RunjournalError {}

/** A stored event does not decode or its hash does not match (run and seq named). */
export class IntegrityError extends RunjournalError {}

/** The store failed (I/O or another storage error). */
export class StorageError extends RunjournalError {}

/** A subscriber fell behind its buffer; `details.next_seq` is where to resume. */
export class LaggedError extends RunjournalError {}

/** No response: the socket is missing, the connection was refused or cut. */
export class ConnectionError extends RunjournalError {}

/** The server's answer breaks the wire contract (not JSON, a gap in a stream, …). */
export class ProtocolError extends RunjournalError {}

type ErrorClass = new (body: ErrorBody, status: number | null) => RunjournalError;

const CLASS_BY_CODE: Record<string, ErrorClass> = {
  fenced: FencedError,
  conflict: ConflictError,
  not_found: NotFoundError,
  finished: FinishedError,
  superseded: SupersededError,
  deleted: NotFoundError,
  unknown_route: NotFoundError,
  already_exists: AlreadyExistsError,
  has_live_fork: AlreadyExistsError,
  mismatch: MismatchError,
  too_large: TooLargeError,
  payload_too_large: TooLargeError,
  invalid_request: InvalidError,
  invalid_event: InvalidError,
  invalid_key: InvalidError,
  invalid: InvalidError,
  out_of_order: InvalidError,
  empty_batch: InvalidError,
  refused: InvalidError,
  unencodable: InvalidError,
  seq_out_of_range: InvalidError,
  exhausted: InvalidError,
  parse: InvalidError,
  seq_gap: InvalidError,
  hash_mismatch: InvalidError,
  not_allowed: InvalidError,
  method_not_allowed: InvalidError,
  unauthorized: UnauthorizedError,
  busy: BusyError,
  timeout: RequestTimeoutError,
  poisoned: UnavailableError,
  writer_stopped: UnavailableError,
  closed: UnavailableError,
  abandoned: UnavailableError,
  locked: UnavailableError,
  contended: UnavailableError,
  disconnected: UnavailableError,
  integrity: IntegrityError,
  snapshot_corrupt: IntegrityError,
  parent_missing: IntegrityError,
  io: StorageError,
  storage: StorageError,
  lagged: LaggedError,
};

/** The typed error for a server error body: its class chosen by `code`. */
export function errorFromBody(body: ErrorBody, status: number | null): RunjournalError {
  const ErrorType = CLASS_BY_CODE[body.code] ?? RunjournalError;
  return new ErrorType(body, status);
}

/** The typed error for an error response, whatever its body holds. */
export function errorFromResponse(status: number, text: string): RunjournalError {
  const body = parseErrorBody(text);
  if (body !== undefined) {
    return errorFromBody(body, status);
  }
  return new ProtocolError(
    { code: "protocol", message: `HTTP ${status} without a runjournal error body: ${text.slice(0, 200)}` },
    status,
  );
}

function parseErrorBody(text: string): ErrorBody | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) {
    return undefined;
  }
  const inner = (parsed as { error?: unknown }).error;
  if (typeof inner !== "object" || inner === null) {
    return undefined;
  }
  const { code, message } = inner as { code?: unknown; message?: unknown };
  if (typeof code !== "string") {
    return undefined;
  }
  return { ...(inner as ErrorBody), message: typeof message === "string" ? message : code };
}

function numberField(details: Record<string, unknown>, name: string): number | undefined {
  const value = details[name];
  return typeof value === "number" ? value : undefined;
}
