/**
 * Test harness: a real `runjournal serve` process on a fresh database in a
 * temporary directory. The binary is `$RUNJOURNAL_BIN`, or the workspace's
 * `target/debug/runjournal`. Readiness is polled (socket present and
 * `/v1/health` answering) with a deadline; the process is stopped with
 * SIGTERM (SIGKILL past a deadline) and its directory removed.
 */

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { Journal, SOCKET_NAME, type ConnectOptions } from "../src/index.js";

/** The package directory (this file is compiled to `build/test/`). */
const PACKAGE_DIR = resolve(fileURLToPath(new URL(".", import.meta.url)), "..", "..");

const START_DEADLINE_MS = 60_000;
const STOP_DEADLINE_MS = 15_000;

/** The runjournal binary the tests run. */
export function runjournalBinary(): string {
  const binary = process.env.RUNJOURNAL_BIN ?? resolve(PACKAGE_DIR, "..", "..", "target", "debug", "runjournal");
  if (!existsSync(binary)) {
    throw new Error(
      `no runjournal binary at ${binary}: build it (cargo build -p runjournal-cli) or set RUNJOURNAL_BIN`,
    );
  }
  return binary;
}

/** What to serve besides the Unix socket. */
export interface ServeOptions {
  /** Also listen on loopback TCP with this bearer token. */
  tcpToken?: string;
}

/** A running `runjournal serve`. */
export class Server {
  readonly dir: string;
  readonly db: string;
  readonly socketPath: string;
  readonly url: string | undefined;
  private readonly args: string[];
  private child: ChildProcess;
  private output = "";
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  private constructor(dir: string, db: string, args: string[], url: string | undefined) {
    this.dir = dir;
    this.db = db;
    this.socketPath = join(db, SOCKET_NAME);
    this.args = args;
    this.url = url;
    this.child = this.spawn();
  }

  /** Starts a server on a fresh database and waits until it answers. */
  static async start(options: ServeOptions = {}): Promise<Server> {
    const dir = mkdtempSync(join(tmpdir(), "runjournal-ts-"));
    const db = join(dir, "db");
    const args = ["serve", "--db", db];
    let url: string | undefined;
    if (options.tcpToken !== undefined) {
      const tokenFile = join(dir, "token");
      writeFileSync(tokenFile, `${options.tcpToken}\n`);
      chmodSync(tokenFile, 0o600);
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      args.push("--listen", `127.0.0.1:${port}`, "--token-file", tokenFile);
    }
    const server = new Server(dir, db, args, url);
    await server.waitReady();
    return server;
  }

  /** Kills the server with `signal` and waits until it exited; returns how it exited. */
  async kill(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill(signal);
    const exited = await poll(() => this.exited !== undefined, STOP_DEADLINE_MS);
    assertExited(exited, this.output);
    return this.exited ?? { code: null, signal: null };
  }

  /** Starts the server again on the same database (after `kill`) and waits until it answers. */
  async restart(): Promise<void> {
    this.child = this.spawn();
    await this.waitReady();
  }

  private spawn(): ChildProcess {
    this.exited = undefined;
    const child = spawn(runjournalBinary(), this.args, { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (chunk: Buffer) => (this.output += chunk.toString("utf8")));
    child.stderr?.on("data", (chunk: Buffer) => (this.output += chunk.toString("utf8")));
    child.on("exit", (code, signal) => {
      if (this.child === child) {
        this.exited = { code, signal };
      }
    });
    return child;
  }

  /** Everything the server printed so far. */
  get log(): string {
    return this.output;
  }

  /** A client over the Unix socket (the database directory is enough). */
  connect(options: ConnectOptions = {}): Promise<Journal> {
    return Journal.connect(this.db, options);
  }

  /** Stops the server (SIGTERM, then SIGKILL past the deadline) and removes its directory. */
  async stop(): Promise<void> {
    if (this.exited === undefined) {
      this.child.kill("SIGTERM");
      const stopped = await poll(() => this.exited !== undefined, STOP_DEADLINE_MS);
      if (!stopped) {
        this.child.kill("SIGKILL");
        await poll(() => this.exited !== undefined, STOP_DEADLINE_MS);
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async waitReady(): Promise<void> {
    const ready = await poll(async () => {
      if (this.exited !== undefined) {
        throw new Error(`runjournal serve exited (${JSON.stringify(this.exited)}) before answering:\n${this.output}`);
      }
      if (!existsSync(this.socketPath)) {
        return false;
      }
      try {
        const journal = await Journal.connect(this.socketPath, { timeoutMs: 2_000 });
        journal.close();
        return true;
      } catch {
        return false;
      }
    }, START_DEADLINE_MS);
    if (!ready) {
      this.child.kill("SIGKILL");
      throw new Error(`runjournal serve did not answer on ${this.socketPath} within ${START_DEADLINE_MS} ms:\n${this.output}`);
    }
  }
}

function assertExited(exited: boolean, output: string): void {
  if (!exited) {
    throw new Error(`runjournal serve did not exit within ${STOP_DEADLINE_MS} ms:\n${output}`);
  }
}

/** Polls `condition` every 20 ms until it holds (true) or the deadline passes (false). */
export async function poll(condition: () => boolean | Promise<boolean>, deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    if (await condition()) {
      return true;
    }
    if (Date.now() > deadline) {
      return false;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A loopback TCP port nothing listens on right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => {
        if (address === null || typeof address === "string") {
          reject(new Error("no TCP port"));
        } else {
          resolve(address.port);
        }
      });
    });
  });
}

let keyCounter = 0;

/** A run key no other test of this process uses. */
export function freshKey(agent = "agent-0"): { goal: string; episode: number; agent: string } {
  keyCounter += 1;
  return { goal: `ts-client/goal ${keyCounter}`, episode: 0, agent };
}
