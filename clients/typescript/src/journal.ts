/**
 * A journal served by its owner process, used through the served API v1:
 * over the owner's Unix socket (a database directory or the socket file) or
 * over TCP with a bearer token. Every method is one request; every failure
 * rejects with a typed `RunjournalError` naming the server's code.
 */

import { readFileSync } from "node:fs";
import { hostname } from "node:os";

import { ConnectionError, ProtocolError } from "./errors.js";
import { keyQuery, query, runPath } from "./paths.js";
import { Run } from "./run.js";
import { parseSse } from "./sse.js";
import { Subscription, type SubscribeOptions } from "./subscription.js";
import { parseEndpoint, Transport } from "./transport.js";
import type {
  Durability,
  Envelope,
  EnvelopePage,
  Expect,
  Handle,
  Health,
  ImportReport,
  OperatorReport,
  PurgePolicy,
  PurgeReport,
  ResumeState,
  RunDiff,
  RunFilter,
  RunKey,
  RunMeta,
  RunRecord,
  VerifyReport,
} from "./types.js";

/** How to reach the server. */
export interface ConnectOptions {
  /** The bearer token for TCP. */
  token?: string;
  /** A file holding the bearer token (trailing whitespace ignored). */
  tokenFile?: string;
  /** The durability every write asks for unless it names one (default: the owner's option). */
  durability?: Durability;
  /** How long one request may wait for its answer (default 60 s). */
  timeoutMs?: number;
}

/** The API version this client speaks. */
export const API_VERSION = 1;

/** A resumed run: the handle to go on writing and the state to go on from. */
export interface Resumed {
  run: Run;
  state: ResumeState;
}

interface HandleAnswer {
  handle: Handle;
}

interface ResumeAnswer {
  handle: Handle;
  state: ResumeState;
}

/** A client of one served journal. */
export class Journal {
  private readonly transport: Transport;
  private readonly durability: Durability | undefined;

  private constructor(transport: Transport, durability: Durability | undefined) {
    this.transport = transport;
    this.durability = durability;
  }

  /**
   * Connects to a served journal: `pathOrUrl` is a database directory (its
   * `runjournal.sock`), a socket file, or `http://host:port` (a token is then
   * required). Checks the server's health and API version.
   */
  static async connect(pathOrUrl: string, options: ConnectOptions = {}): Promise<Journal> {
    const token = options.token ?? (options.tokenFile === undefined ? undefined : readToken(options.tokenFile));
    const transport = new Transport(parseEndpoint(pathOrUrl), token, options.timeoutMs ?? 60_000);
    const journal = new Journal(transport, options.durability);
    const health = await journal.health();
    if (health.server !== "runjournal" || health.api !== API_VERSION) {
      transport.close();
      throw new ProtocolError({
        code: "protocol",
        message: `${transport.describe()} is not a runjournal API v${API_VERSION} server (server ${health.server}, api ${health.api})`,
      });
    }
    return journal;
  }

  /** Where this client sends its requests. */
  get endpoint(): string {
    return this.transport.describe();
  }

  /** Closes idle connections; open subscriptions end on their own. */
  close(): void {
    this.transport.close();
  }

  /** The server's name, version and API version. */
  health(): Promise<Health> {
    return this.transport.json({ method: "GET", path: "/v1/health" });
  }

  /** Creates a run (`run_started`, epoch 0); an existing key is an `AlreadyExistsError`. */
  async begin(key: RunKey, meta: RunMeta = {}): Promise<Run> {
    const answer = await this.transport.json<HandleAnswer>({
      method: "POST",
      path: "/v1/runs",
      body: { run: key, meta },
    });
    return this.run(answer.handle);
  }

  /**
   * Resumes a run: appends `attached` at a new epoch (fencing every older
   * handle) and answers the resume state. A missing run is a
   * `NotFoundError`, a completed or failed one a `FinishedError`, a stored
   * meta that differs from `expect` a `MismatchError`.
   */
  async resume(key: RunKey, expect?: Expect, owner: string = defaultOwner()): Promise<Resumed> {
    const answer = await this.transport.json<ResumeAnswer>({
      method: "POST",
      path: runPath(key, "/resume"),
      body: { owner, expect },
    });
    return { run: this.run(answer.handle), state: answer.state };
  }

  /** Resumes the newest recoverable episode of `(goal, agent)`; none is a `NotFoundError`. */
  async resumeLatest(goal: string, agent: string): Promise<Resumed> {
    const answer = await this.transport.json<ResumeAnswer>({
      method: "POST",
      path: "/v1/resume-latest",
      body: { goal, agent },
    });
    return { run: this.run(answer.handle), state: answer.state };
  }

  /**
   * A writable run from a handle obtained elsewhere (another process, or
   * `Run.toHandle()`): appends carry its epoch and expected seq like any
   * other, so a stale one is fenced or conflicts.
   */
  attach(handle: Handle): Run {
    return this.run(handle);
  }

  /** The run's record. */
  record(key: RunKey): Promise<RunRecord> {
    return this.transport.json({ method: "GET", path: runPath(key) });
  }

  /** The runs that pass `filter`, ordered by key. */
  async runs(filter: RunFilter = {}): Promise<RunRecord[]> {
    const answer = await this.transport.json<{ runs: RunRecord[] }>({
      method: "GET",
      path: `/v1/runs${query({ ...filter })}`,
    });
    return answer.runs;
  }

  /** The run's resume state, as of its last event or of seq `at`. */
  state(key: RunKey, options: { at?: number } = {}): Promise<ResumeState> {
    return this.transport.json({ method: "GET", path: runPath(key, `/state${query({ at: options.at })}`) });
  }

  /** A page of the run's own log from seq `from` (default 0), at most `limit` (≤ 10000) envelopes. */
  events(key: RunKey, options: { from?: number; limit?: number } = {}): Promise<EnvelopePage> {
    return this.transport.json({
      method: "GET",
      path: runPath(key, `/events${query({ from: options.from, limit: options.limit })}`),
    });
  }

  /** A page of the run's whole history (a fork's prefix included); `from` counts history positions. */
  history(key: RunKey, options: { from?: number; limit?: number } = {}): Promise<EnvelopePage> {
    return this.transport.json({
      method: "GET",
      path: runPath(key, `/history${query({ from: options.from, limit: options.limit })}`),
    });
  }

  /** Verifies the run's chain; a bad event rejects with an `IntegrityError` naming its seq. */
  verify(key: RunKey): Promise<VerifyReport> {
    return this.transport.json({ method: "GET", path: runPath(key, "/verify") });
  }

  /** The fork parent's record; `null` for a run that is not a fork. */
  async parent(key: RunKey): Promise<RunRecord | null> {
    const answer = await this.transport.json<{ run: RunRecord | null }>({ method: "GET", path: runPath(key, "/parent") });
    return answer.run;
  }

  /** The runs forked from this one. */
  async children(key: RunKey): Promise<RunRecord[]> {
    const answer = await this.transport.json<{ runs: RunRecord[] }>({ method: "GET", path: runPath(key, "/children") });
    return answer.runs;
  }

  /** Every run forked from this one, transitively. */
  async descendants(key: RunKey): Promise<RunRecord[]> {
    const answer = await this.transport.json<{ runs: RunRecord[] }>({
      method: "GET",
      path: runPath(key, "/descendants"),
    });
    return answer.runs;
  }

  /** How runs `a` and `b` differ: their common history and the state fields apart. */
  diff(a: RunKey, b: RunKey): Promise<RunDiff> {
    return this.transport.json({ method: "GET", path: `/v1/diff?a=${keyQuery(a)}&b=${keyQuery(b)}` });
  }

  /** The resume state of every recoverable run (running or interrupted). */
  async recoverable(): Promise<ResumeState[]> {
    const answer = await this.transport.json<{ states: ResumeState[] }>({ method: "GET", path: "/v1/recoverable" });
    return answer.states;
  }

  /** The newest episode of `(goal, agent)`, whatever its status; `null` when none. */
  async latestEpisode(goal: string, agent: string): Promise<number | null> {
    const answer = await this.transport.json<{ episode: number | null }>({
      method: "GET",
      path: `/v1/episodes/latest${query({ goal, agent })}`,
    });
    return answer.episode;
  }

  /** A fresh episode number for `goal`. */
  async nextEpisode(goal: string): Promise<number> {
    const answer = await this.transport.json<{ episode: number }>({
      method: "GET",
      path: `/v1/episodes/next${query({ goal })}`,
    });
    if (answer.episode === null) {
      throw new ProtocolError({ code: "protocol", message: `no next episode for goal ${goal}` });
    }
    return answer.episode;
  }

  /** Forks `key` after seq `atSeq` into `child`; both stay live. */
  async fork(key: RunKey, atSeq: number, child: RunKey): Promise<Run> {
    const answer = await this.transport.json<HandleAnswer>({
      method: "POST",
      path: runPath(key, "/fork"),
      body: { at_seq: atSeq, child },
    });
    return this.run(answer.handle);
  }

  /** Forks `key` after seq `atSeq` into `n` new episodes. */
  async fanout(key: RunKey, atSeq: number, n: number): Promise<Run[]> {
    const answer = await this.transport.json<{ handles: Handle[] }>({
      method: "POST",
      path: runPath(key, "/fanout"),
      body: { at_seq: atSeq, n },
    });
    return answer.handles.map((handle) => this.run(handle));
  }

  /** Forks `key` after seq `atSeq` and, in the same step, marks it superseded. */
  async rewind(key: RunKey, atSeq: number): Promise<Run> {
    const answer = await this.transport.json<HandleAnswer>({
      method: "POST",
      path: runPath(key, "/rewind"),
      body: { at_seq: atSeq },
    });
    return this.run(answer.handle);
  }

  /** Operator action: interrupts a live run (it stays recoverable). */
  interrupt(key: RunKey, operator: string): Promise<OperatorReport> {
    return this.transport.json({ method: "POST", path: runPath(key, "/interrupt"), body: { operator } });
  }

  /** Operator action: fails a run with `reason`. */
  fail(key: RunKey, operator: string, reason: string): Promise<OperatorReport> {
    return this.transport.json({ method: "POST", path: runPath(key, "/fail"), body: { operator, reason } });
  }

  /** Operator action: resumes an interrupted run as the operator. */
  operatorResume(key: RunKey, operator: string): Promise<OperatorReport> {
    return this.transport.json({ method: "POST", path: runPath(key, "/operator-resume"), body: { operator } });
  }

  /** Removes the runs `policy` selects (only reports them when `dryRun`). */
  purge(policy: PurgePolicy, dryRun = false): Promise<PurgeReport> {
    return this.transport.json({ method: "POST", path: "/v1/purge", body: { policy, dry_run: dryRun } });
  }

  /** Imports export-format JSON lines into new runs, all or nothing. */
  import(jsonLines: string): Promise<ImportReport> {
    return this.transport.json({
      method: "POST",
      path: "/v1/import",
      rawBody: { text: jsonLines, contentType: "application/x-ndjson" },
    });
  }

  /** The export-format JSON lines of one run, or of every run. */
  async export(key?: RunKey): Promise<string> {
    const { text } = await this.transport.text({
      method: "GET",
      path: `/v1/export${key === undefined ? "" : `?run=${keyQuery(key)}`}`,
    });
    return text;
  }

  /** Resolves once the owner synced everything acknowledged so far to stable storage. */
  async sync(): Promise<void> {
    await this.transport.json({ method: "POST", path: "/v1/sync", body: {} });
  }

  /** Rebuilds the run's stored snapshots from its events. */
  async rebuildSnapshots(key: RunKey): Promise<void> {
    await this.transport.json({ method: "POST", path: runPath(key, "/snapshots/rebuild"), body: {} });
  }

  /** The owner's metrics in the Prometheus text format. */
  async metrics(): Promise<string> {
    const { text } = await this.transport.text({ method: "GET", path: "/v1/metrics" });
    return text;
  }

  /**
   * The run's events from seq `from` on, live: an async iterator that
   * reconnects with `Last-Event-ID` when the stream is cut, with no gap and
   * no duplicate.
   */
  subscribe(key: RunKey, options: SubscribeOptions = {}): Subscription {
    return new Subscription(this.transport, key, options);
  }

  /**
   * Every run's live events from now on, as they are appended. It cannot
   * resume: a cut connection is a `ConnectionError` (subscribe per run to
   * resume exactly). It ends when the server sends `end` or the consumer stops.
   */
  async *subscribeAll(options: { signal?: AbortSignal } = {}): AsyncGenerator<Envelope> {
    const response = await this.transport.open({
      method: "GET",
      path: "/v1/subscribe",
      headers: { accept: "text/event-stream" },
      signal: options.signal,
    });
    let ended = false;
    try {
      for await (const message of parseSse(response)) {
        if (message.event === "envelope") {
          yield JSON.parse(message.data) as Envelope;
        } else if (message.event === "end") {
          ended = true;
          return;
        }
      }
    } catch (cause) {
      if (options.signal?.aborted === true) {
        return;
      }
      throw new ConnectionError({ code: "connection", message: `GET /v1/subscribe: stream cut` }, null, { cause });
    } finally {
      response.destroy();
    }
    if (!ended) {
      throw new ConnectionError({ code: "connection", message: "GET /v1/subscribe: stream ended without end" });
    }
  }

  private run(handle: Handle): Run {
    return new Run(this.transport, handle, this.durability);
  }
}

function readToken(path: string): string {
  return readFileSync(path, "utf8").trimEnd();
}

function defaultOwner(): string {
  return `${hostname()}/${process.pid}`;
}
