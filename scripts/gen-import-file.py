#!/usr/bin/env python3
"""Writes a JSON-lines import file of N events (default 1,000,000): runs of
1,000 events each (run_started, steps of ~300 bytes of content, a final
run_completed), for measuring `runjournal import`.

    scripts/gen-import-file.py [EVENTS] > big.jsonl
"""
import sys

events = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
per_run = 1000
content = "x" * 300
out = sys.stdout
written = 0
run = 0
while written < events:
    key = '{"goal":"bench-%d","episode":0,"agent":"agent-0"}' % run
    n = min(per_run, events - written)
    for seq in range(n):
        if seq == 0:
            event = '{"type":"run_started","meta":{}}'
        elif seq == n - 1:
            event = '{"type":"run_completed","output":"done"}'
        else:
            event = '{"type":"step","messages":[{"role":"assistant","content":"%s %d"}]}' % (content, seq)
        out.write('{"run":%s,"seq":%d,"ts":%d,"event":%s}\n' % (key, seq, 1763800000000 + seq, event))
    written += n
    run += 1
