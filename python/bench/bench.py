"""runjournal vs SQLite for the two Python persistence interfaces, same machine, same run.

    target/python-venv/bin/python python/bench/bench.py [--steps 1000] [--message-bytes 500] [--items 1000]

1. LangGraph: a chat graph of `--steps` steps (each step appends one message
   of `--message-bytes` to a growing `messages` list), checkpointed with
   `durability="sync"` by RunjournalSaver (durable journal) and by
   langgraph's SqliteSaver (WAL, synchronous=FULL: each commit is synced).
   Reports the time of every checkpoint `put`, the whole run, and the bytes
   on disk.
2. OpenAI Agents SDK: `--items` calls of `add_items` (one item each) with
   RunjournalSession (durable) and the SDK's SQLiteSession (WAL,
   synchronous=FULL).

Prints one JSON object (and a Markdown table with --markdown).
"""

import argparse
import asyncio
import json
import operator
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from typing import Annotated, TypedDict

from agents.memory import SQLiteSession
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph

import runjournal
from runjournal.langgraph import RunjournalSaver
from runjournal.openai_agents import RunjournalSession


class State(TypedDict):
    messages: Annotated[list, operator.add]
    step: int


def disk_bytes(path: str) -> int:
    """Bytes of the files at `path` (a file, its -wal/-shm companions, or a directory)."""
    total = 0
    candidates = [path, path + "-wal", path + "-shm", path + "-journal"]
    for candidate in candidates:
        if os.path.isdir(candidate):
            for root, _dirs, files in os.walk(candidate):
                total += sum(os.path.getsize(os.path.join(root, name)) for name in files)
        elif os.path.exists(candidate):
            total += os.path.getsize(candidate)
    return total


def chat_graph(steps: int, message_bytes: int):
    filler = "x" * max(0, message_bytes - 24)

    def work(state: State) -> dict:
        step = state["step"] + 1
        role = "assistant" if step % 2 else "user"
        return {"messages": [{"role": role, "content": f"{step:06d} {filler}"}], "step": step}

    graph = StateGraph(State)
    graph.add_node("work", work)
    graph.add_edge(START, "work")
    graph.add_conditional_edges("work", lambda state: END if state["step"] >= steps else "work")
    return graph


def timed_puts(saver):
    """Wraps `saver.put` to record each call's duration."""
    durations = []
    put = saver.put

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return put(*args, **kwargs)
        finally:
            durations.append(time.perf_counter() - start)

    saver.put = wrapper
    return durations


def run_graph(saver, steps: int, message_bytes: int) -> dict:
    durations = timed_puts(saver)
    graph = chat_graph(steps, message_bytes).compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "bench"}, "recursion_limit": steps + 10}
    start = time.perf_counter()
    final = graph.invoke({"messages": [], "step": 0}, config, durability="sync")
    total = time.perf_counter() - start
    assert final["step"] == steps and len(final["messages"]) == steps
    return {
        "puts": len(durations),
        "put_mean_ms": round(statistics.mean(durations) * 1000, 3),
        "put_p50_ms": round(statistics.median(durations) * 1000, 3),
        "put_max_ms": round(max(durations) * 1000, 3),
        "put_total_s": round(sum(durations), 3),
        "run_s": round(total, 3),
    }


def bench_langgraph(directory: str, steps: int, message_bytes: int) -> dict:
    results = {}
    path = os.path.join(directory, "lg-runjournal.db")
    journal = runjournal.Journal.open(path, durability="durable")
    results["RunjournalSaver"] = run_graph(RunjournalSaver(journal), steps, message_bytes)
    journal.close()
    del journal
    results["RunjournalSaver"]["bytes_on_disk"] = disk_bytes(path)

    path = os.path.join(directory, "lg-sqlite.db")
    connection = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(connection)
    saver.setup()
    connection.execute("PRAGMA synchronous=FULL")
    results["SqliteSaver"] = run_graph(saver, steps, message_bytes)
    results["SqliteSaver"]["synchronous"] = connection.execute("PRAGMA synchronous").fetchone()[0]
    results["SqliteSaver"]["journal_mode"] = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()
    results["SqliteSaver"]["bytes_on_disk"] = disk_bytes(path)
    return results


async def add_items(session, items: int) -> dict:
    durations = []
    start = time.perf_counter()
    for i in range(items):
        item = {"role": "user" if i % 2 else "assistant", "content": f"message {i} " + "y" * 200}
        began = time.perf_counter()
        await session.add_items([item])
        durations.append(time.perf_counter() - began)
    total = time.perf_counter() - start
    assert len(await session.get_items()) == items
    return {
        "calls": items,
        "add_mean_ms": round(statistics.mean(durations) * 1000, 3),
        "add_p50_ms": round(statistics.median(durations) * 1000, 3),
        "total_s": round(total, 3),
    }


def bench_agents(directory: str, items: int) -> dict:
    results = {}
    path = os.path.join(directory, "agents-runjournal.db")
    journal = runjournal.Journal.open(path, durability="durable")
    results["RunjournalSession"] = asyncio.run(add_items(RunjournalSession("bench", journal), items))
    journal.close()
    del journal
    results["RunjournalSession"]["bytes_on_disk"] = disk_bytes(path)

    path = os.path.join(directory, "agents-sqlite.db")
    session = SQLiteSession("bench", path)
    results["SQLiteSession"] = asyncio.run(add_items(session, items))
    check = sqlite3.connect(path)
    results["SQLiteSession"]["synchronous"] = check.execute("PRAGMA synchronous").fetchone()[0]
    results["SQLiteSession"]["journal_mode"] = check.execute("PRAGMA journal_mode").fetchone()[0]
    check.close()
    session.close()
    results["SQLiteSession"]["bytes_on_disk"] = disk_bytes(path)
    return results


def markdown(results: dict) -> str:
    lg, agents = results["langgraph"], results["agents"]
    rows = [
        "| LangGraph, {steps} steps | put mean | put p50 | all puts | whole run | bytes on disk |".format(**results["params"]),
        "|---|---|---|---|---|---|",
    ]
    for name, r in lg.items():
        rows.append(
            f"| {name} | {r['put_mean_ms']} ms | {r['put_p50_ms']} ms | {r['put_total_s']} s | {r['run_s']} s | {r['bytes_on_disk']:,} |"
        )
    rows += ["", "| Agents SDK, {items} add_items | mean | p50 | total | bytes on disk |".format(**results["params"]), "|---|---|---|---|---|"]
    for name, r in agents.items():
        rows.append(f"| {name} | {r['add_mean_ms']} ms | {r['add_p50_ms']} ms | {r['total_s']} s | {r['bytes_on_disk']:,} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--message-bytes", type=int, default=500)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--dir", default=None, help="where the databases go (default: a temporary directory)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        results = {
            "params": {"steps": args.steps, "message_bytes": args.message_bytes, "items": args.items},
            "langgraph": bench_langgraph(directory, args.steps, args.message_bytes),
            "agents": bench_agents(directory, args.items),
        }
    print(json.dumps(results, indent=2))
    if args.markdown:
        print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
