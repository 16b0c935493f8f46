// Run keys in paths: only RFC 3986 unreserved characters stay as they are.

import assert from "node:assert/strict";
import { test } from "node:test";

import { encodeSegment, runPath } from "../src/index.js";

test("a key path encodes every reserved byte, slash and percent included", () => {
  const path = runPath({ goal: "fix/login bug%?#&=+é", episode: 7, agent: "a/b" });
  assert.equal(path, "/v1/runs/fix%2Flogin%20bug%25%3F%23%26%3D%2B%C3%A9/7/a%2Fb");
});

test("unreserved characters stay and the sub-delimiters encodeURIComponent keeps are encoded", () => {
  assert.equal(encodeSegment("Az09-._~"), "Az09-._~");
  assert.equal(encodeSegment("!'()*"), "%21%27%28%29%2A");
});
