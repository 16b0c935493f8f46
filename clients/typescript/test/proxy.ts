/**
 * A Unix-socket proxy in front of the server's socket: it forwards bytes both
 * ways, records what every client connection sent, and can cut every open
 * connection at once, the way a network failure would.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A proxy listening on its own socket file. */
export class CuttingProxy {
  readonly socketPath: string;
  private readonly dir: string;
  private readonly server: Server;
  private readonly open = new Set<Socket>();
  private readonly requests: string[] = [];
  private readonly stalled = new Set<Socket>();

  private constructor(dir: string, server: Server) {
    this.dir = dir;
    this.socketPath = join(dir, "proxy.sock");
    this.server = server;
  }

  /** Starts a proxy to the socket at `target`. */
  static async start(target: string): Promise<CuttingProxy> {
    const dir = mkdtempSync(join(tmpdir(), "runjournal-proxy-"));
    const server = createServer();
    const proxy = new CuttingProxy(dir, server);
    server.on("connection", (client) => proxy.forward(client, target));
    await new Promise<void>((resolve) => server.listen(proxy.socketPath, resolve));
    return proxy;
  }

  /** What each client connection sent, in connection order (text). */
  get sent(): readonly string[] {
    return this.requests;
  }

  /** Destroys every open connection, both sides. */
  cutAll(): void {
    for (const socket of this.open) {
      socket.destroy();
    }
    this.open.clear();
  }

  /**
   * Stops forwarding on every open connection without closing it, as a
   * network that silently drops packets would; new connections still flow.
   */
  stallAll(): void {
    for (const socket of this.open) {
      socket.pause();
      this.stalled.add(socket);
    }
  }

  /** Cuts everything, stops listening and removes the socket's directory. */
  async stop(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private forward(client: Socket, target: string): void {
    const index = this.requests.length;
    this.requests.push("");
    const upstream = createConnection(target);
    this.open.add(client);
    this.open.add(upstream);
    client.on("data", (chunk: Buffer) => {
      if (this.stalled.has(client)) {
        return;
      }
      this.requests[index] += chunk.toString("utf8");
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!this.stalled.has(upstream)) {
        client.write(chunk);
      }
    });
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      this.open.delete(client);
      this.open.delete(upstream);
    };
    client.on("close", close);
    upstream.on("close", close);
    client.on("error", close);
    upstream.on("error", close);
  }
}
