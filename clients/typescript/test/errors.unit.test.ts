// Error bodies become typed errors chosen by their code.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ConflictError,
  FencedError,
  InvalidError,
  ProtocolError,
  RunjournalError,
  TooLargeError,
  UnauthorizedError,
  errorFromResponse,
} from "../src/index.js";

const run = { goal: "g", episode: 0, agent: "a" };

test("a fenced body becomes a FencedError with both epochs", () => {
  const error = errorFromResponse(
    409,
    JSON.stringify({ error: { code: "fenced", message: "m", run, seq: 4, details: { epoch: 1, current: 2 } } }),
  );
  assert.ok(error instanceof FencedError);
  assert.equal(error.code, "fenced");
  assert.deepEqual(error.run, run);
  assert.equal(error.seq, 4);
  assert.equal(error.epoch, 1);
  assert.equal(error.current, 2);
  assert.equal(error.status, 409);
  assert.equal(error.name, "FencedError");
});

test("a conflict body becomes a ConflictError with expected and actual", () => {
  const error = errorFromResponse(
    409,
    JSON.stringify({ error: { code: "conflict", message: "m", run, seq: 3, details: { expected: 3, actual: 5 } } }),
  );
  assert.ok(error instanceof ConflictError);
  assert.equal(error.expected, 3);
  assert.equal(error.actual, 5);
});

test("each code family has its class and keeps its exact code", () => {
  const cases: [string, new (...args: never[]) => RunjournalError][] = [
    ["invalid_request", InvalidError],
    ["out_of_order", InvalidError],
    ["payload_too_large", TooLargeError],
    ["too_large", TooLargeError],
    ["unauthorized", UnauthorizedError],
  ];
  for (const [code, ErrorClass] of cases) {
    const error = errorFromResponse(400, JSON.stringify({ error: { code, message: code } }));
    assert.ok(error instanceof ErrorClass, code);
    assert.equal(error.code, code);
    assert.deepEqual(error.details, {});
    assert.equal(error.run, null);
  }
});

test("an unknown code is still a RunjournalError with that code", () => {
  const error = errorFromResponse(500, JSON.stringify({ error: { code: "brand_new", message: "m" } }));
  assert.equal(error.constructor, RunjournalError);
  assert.equal(error.code, "brand_new");
});

test("an error status without an error body is a ProtocolError naming the status", () => {
  const error = errorFromResponse(502, "<html>bad gateway</html>");
  assert.ok(error instanceof ProtocolError);
  assert.equal(error.status, 502);
  assert.match(error.message, /HTTP 502/);
});
