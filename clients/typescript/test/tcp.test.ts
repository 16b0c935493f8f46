// TCP needs the bearer token: the right one works, a wrong or missing one is
// UnauthorizedError before anything is read or written.

import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import * as http from "node:http";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { Journal, UnauthorizedError } from "../src/index.js";
import { freshKey, Server } from "./server.js";

const TOKEN = "s3cret-token-for-tests";

let server: Server;

before(async () => {
  server = await Server.start({ tcpToken: TOKEN });
});

after(async () => {
  await server?.stop();
});

function url(): string {
  assert.ok(server.url !== undefined);
  return server.url;
}

test("with the right token a client over TCP writes and reads", async () => {
  const journal = await Journal.connect(url(), { token: TOKEN });
  const key = freshKey();
  const run = await journal.begin(key);
  await run.custom("over", "tcp");
  const state = await journal.state(key);
  assert.equal(state.last_seq, 1);
  journal.close();
});

test("the token may come from a file", async () => {
  const tokenFile = join(server.dir, "client-token");
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const journal = await Journal.connect(url(), { tokenFile });
  assert.equal((await journal.health()).api, 1);
  journal.close();
});

test("a wrong token is UnauthorizedError", async () => {
  await assert.rejects(Journal.connect(url(), { token: "wrong" }), (error: unknown) => {
    assert.ok(error instanceof UnauthorizedError);
    assert.equal(error.code, "unauthorized");
    assert.equal(error.status, 401);
    return true;
  });
});

test("a begin with a wrong token is refused with 401 and creates nothing", async () => {
  const key = freshKey();
  const { status, body } = await post(url(), "/v1/runs", { run: key, meta: {} }, "wrong");
  assert.equal(status, 401);
  assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, "unauthorized");
  const journal = await Journal.connect(url(), { token: TOKEN });
  assert.deepEqual(await journal.runs({ goal: key.goal }), []);
  journal.close();
});

test("a missing token is UnauthorizedError", async () => {
  await assert.rejects(Journal.connect(url()), UnauthorizedError);
});

/** A raw POST, so that a request the client would never send can be sent. */
function post(base: string, path: string, body: unknown, token: string): Promise<{ status: number; body: string }> {
  const target = new URL(path, base);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(target, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    });
    request.on("response", (response) => {
      let text = "";
      response.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(payload);
  });
}
