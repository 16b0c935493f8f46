// The package as a consumer imports it: by name, through its exports map,
// from the compiled dist/ (with type declarations beside it).

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";

test("the package imports by name from dist with its declarations", async () => {
  const entry = import.meta.resolve("runjournal");
  assert.match(entry, /\/dist\/index\.js$/);
  assert.ok(existsSync(new URL(entry.replace(/\.js$/, ".d.ts"))), "dist/index.d.ts is missing");
  const runjournal = (await import("runjournal")) as Record<string, unknown>;
  for (const name of ["Journal", "Run", "Subscription", "Outcome", "RunjournalError", "FencedError", "ConflictError"]) {
    assert.ok(name in runjournal, `runjournal exports no ${name}`);
  }
  assert.equal(runjournal.API_VERSION, 1);
});
