#!/usr/bin/env bash
# Builds the TypeScript client and runs its tests against a real
# `runjournal serve` (the binary is $RUNJOURNAL_BIN, or the workspace's
# target/debug/runjournal: build it first). Needs only node (>= 20) and npm.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

if [ ! -x "${RUNJOURNAL_BIN:-../../target/debug/runjournal}" ]; then
  echo "clients/typescript/test.sh: no runjournal binary at ${RUNJOURNAL_BIN:-../../target/debug/runjournal}; run cargo build -p runjournal-cli or set RUNJOURNAL_BIN" >&2
  exit 1
fi

# The lock file pins every package; use the npm cache when it has them.
npm ci --prefer-offline --no-audit --no-fund
npm run build
npm test
