/**
 * HTTP/1.1 over `node:http`: to the owner's Unix socket (no auth; the file's
 * permissions are the auth) or to a TCP address with a bearer token. One
 * keep-alive agent per journal. Every request either resolves with the
 * response or rejects with a typed error; a response with an error status is
 * always turned into the server's typed error.
 */

import * as http from "node:http";
import { statSync } from "node:fs";
import { join } from "node:path";

import { ConnectionError, errorFromResponse, ProtocolError, RunjournalError } from "./errors.js";

/** The file name of the owner's socket inside the database directory. */
export const SOCKET_NAME = "runjournal.sock";

/** Where the server listens. */
export type Endpoint = { kind: "unix"; socketPath: string } | { kind: "tcp"; host: string; port: number };

/** A request to send. */
export interface Request {
  method: "GET" | "POST";
  path: string;
  /** A JSON value (serialized here) or raw text (sent as is). */
  body?: unknown;
  /** The content type of a raw-text body. */
  rawBody?: { text: string; contentType: string };
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** How long the connection may stay silent before it is cut (default: the transport's timeout). */
  idleTimeoutMs?: number;
}

/**
 * Resolves what `Journal.connect` was given: an `http://host:port` URL, a
 * socket file, or a database directory (whose `runjournal.sock` is used; a
 * path that does not exist is taken as a database directory unless its name
 * ends in `.sock`).
 */
export function parseEndpoint(pathOrUrl: string): Endpoint {
  if (pathOrUrl.startsWith("http://")) {
    const url = new URL(pathOrUrl);
    const port = url.port === "" ? 80 : Number(url.port);
    return { kind: "tcp", host: url.hostname.replace(/^\[(.*)\]$/, "$1"), port };
  }
  if (pathOrUrl.startsWith("https://")) {
    throw new ConnectionError({ code: "connection", message: `TLS is not part of the served API: ${pathOrUrl}` });
  }
  const path = pathOrUrl.startsWith("unix:") ? pathOrUrl.slice("unix:".length) : pathOrUrl;
  return { kind: "unix", socketPath: isSocketPath(path) ? path : join(path, SOCKET_NAME) };
}

/** A socket file, or a path that is not there yet and is named like one; anything else is a database directory. */
function isSocketPath(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return path.endsWith(".sock");
  }
}

/** Sends requests to one endpoint. */
export class Transport {
  readonly endpoint: Endpoint;
  private readonly token: string | undefined;
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;

  constructor(endpoint: Endpoint, token: string | undefined, timeoutMs: number) {
    this.endpoint = endpoint;
    this.token = token;
    this.timeoutMs = timeoutMs;
    this.agent = new http.Agent({ keepAlive: true });
  }

  /** A human-readable name of the endpoint, for messages. */
  describe(): string {
    return this.endpoint.kind === "unix"
      ? `unix:${this.endpoint.socketPath}`
      : `http://${this.endpoint.host}:${this.endpoint.port}`;
  }

  /** Sends `request` and parses the JSON answer; an error status rejects with its typed error. */
  async json<T>(request: Request): Promise<T> {
    const { status, text } = await this.text(request);
    try {
      return JSON.parse(text) as T;
    } catch (cause) {
      throw new ProtocolError(
        { code: "protocol", message: `${request.method} ${request.path}: answer (HTTP ${status}) is not JSON` },
        status,
        { cause },
      );
    }
  }

  /** Sends `request` and collects the answer's text; an error status rejects with its typed error. */
  async text(request: Request): Promise<{ status: number; text: string }> {
    const response = await this.open(request);
    const text = await readAll(response, request);
    return { status: response.statusCode ?? 0, text };
  }

  /**
   * Sends `request` and resolves with the response once its head arrived and
   * its status is a success; the caller reads (and must end) the body.
   */
  async open(request: Request): Promise<http.IncomingMessage> {
    const response = await this.send(request);
    const status = response.statusCode ?? 0;
    if (status >= 200 && status < 300) {
      return response;
    }
    const text = await readAll(response, request);
    throw errorFromResponse(status, text);
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.agent.destroy();
  }

  private send(request: Request): Promise<http.IncomingMessage> {
    const headers: Record<string, string> = { accept: "application/json", ...request.headers };
    let payload: string | undefined;
    if (request.rawBody !== undefined) {
      payload = request.rawBody.text;
      headers["content-type"] = request.rawBody.contentType;
    } else if (request.body !== undefined) {
      payload = JSON.stringify(request.body);
      headers["content-type"] = "application/json";
    }
    if (payload !== undefined) {
      headers["content-length"] = String(Buffer.byteLength(payload));
    }
    if (this.token !== undefined) {
      headers.authorization = `Bearer ${this.token}`;
    }
    const target =
      this.endpoint.kind === "unix"
        ? { socketPath: this.endpoint.socketPath }
        : { host: this.endpoint.host, port: this.endpoint.port };
    return new Promise((resolve, reject) => {
      const req = http.request({
        ...target,
        method: request.method,
        path: request.path,
        headers,
        agent: this.agent,
        signal: request.signal,
        timeout: request.idleTimeoutMs ?? this.timeoutMs,
      });
      req.on("response", resolve);
      req.on("timeout", () => {
        req.destroy(
          new ConnectionError({
            code: "connection",
            message: `${request.method} ${request.path}: ${this.describe()} was silent for ${request.idleTimeoutMs ?? this.timeoutMs} ms`,
          }),
        );
      });
      req.on("error", (cause) => reject(this.connectionError(request, cause)));
      req.end(payload);
    });
  }

  private connectionError(request: Request, cause: unknown): RunjournalError {
    if (cause instanceof RunjournalError) {
      return cause;
    }
    const errno = (cause as NodeJS.ErrnoException | undefined)?.code;
    const reason = cause instanceof Error ? cause.message : String(cause);
    return new ConnectionError(
      {
        code: "connection",
        message: `${request.method} ${request.path}: cannot reach ${this.describe()}: ${reason}`,
        details: { endpoint: this.describe(), errno: errno ?? null },
      },
      null,
      { cause },
    );
  }
}

function readAll(response: http.IncomingMessage, request: Request): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    response.on("data", (chunk: Buffer) => chunks.push(chunk));
    response.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    response.on("error", (cause) =>
      reject(
        new ConnectionError(
          { code: "connection", message: `${request.method} ${request.path}: answer cut: ${cause.message}` },
          response.statusCode ?? null,
          { cause },
        ),
      ),
    );
    response.on("close", () => {
      if (response.complete) {
        return;
      }
      reject(
        new ConnectionError(
          { code: "connection", message: `${request.method} ${request.path}: answer cut by the server` },
          response.statusCode ?? null,
        ),
      );
    });
  });
}
