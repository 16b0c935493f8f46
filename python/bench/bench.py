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

Each pair runs `--rounds` times, alternating which goes first (this
machine's fsync latency drifts with the other work on it); the round with
the median total is reported, with every round's total. Prints one JSON
object (and a Markdown table with --markdown).
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


def lg_runjournal(directory: str, steps: int, message_bytes: int, round_: int) -> dict:
    path = os.path.join(directory, f"lg-runjournal-{round_}.db")
    journal = runjournal.Journal.open(path, durability="durable")
    result = run_graph(RunjournalSaver(journal), steps, message_bytes)
    journal.close()
    del journal
    result["bytes_on_disk"] = disk_bytes(path)
    return result


def lg_sqlite(directory: str, steps: int, message_bytes: int, round_: int) -> dict:
    path = os.path.join(directory, f"lg-sqlite-{round_}.db")
    connection = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(connection)
    saver.setup()
    connection.execute("PRAGMA synchronous=FULL")
    result = run_graph(saver, steps, message_bytes)
    result["synchronous"] = connection.execute("PRAGMA synchronous").fetchone()[0]
    result["journal_mode"] = connection.execute("PRAGMA journal_mode").fetchone()[0]
    connection.close()
    result["bytes_on_disk"] = disk_bytes(path)
    return result


def alternate(rounds: int, first: tuple, second: tuple, *args) -> dict:
    """Runs both `rounds` times, alternating which goes first (the machine's
    fsync latency drifts); reports the round with the median total of each."""
    runs: dict = {first[0]: [], second[0]: []}
    for round_ in range(rounds):
        order = (first, second) if round_ % 2 == 0 else (second, first)
        for name, function in order:
            runs[name].append(function(*args, round_))
    results = {}
    for name, measured in runs.items():
        measured.sort(key=lambda result: result.get("put_total_s", result.get("total_s")))
        median = dict(measured[(len(measured) - 1) // 2])
        median["rounds_total_s"] = [m.get("put_total_s", m.get("total_s")) for m in measured]
        results[name] = median
    return results


def bench_langgraph(directory: str, steps: int, message_bytes: int, rounds: int) -> dict:
    return alternate(
        rounds, ("RunjournalSaver", lg_runjournal), ("SqliteSaver", lg_sqlite), directory, steps, message_bytes
    )


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


def agents_runjournal(directory: str, items: int, round_: int) -> dict:
    path = os.path.join(directory, f"agents-runjournal-{round_}.db")
    journal = runjournal.Journal.open(path, durability="durable")
    result = asyncio.run(add_items(RunjournalSession("bench", journal), items))
    journal.close()
    del journal
    result["bytes_on_disk"] = disk_bytes(path)
    return result


def agents_sqlite(directory: str, items: int, round_: int) -> dict:
    path = os.path.join(directory, f"agents-sqlite-{round_}.db")
    session = SQLiteSession("bench", path)
    result = asyncio.run(add_items(session, items))
    check = sqlite3.connect(path)
    result["synchronous"] = check.execute("PRAGMA synchronous").fetchone()[0]
    result["journal_mode"] = check.execute("PRAGMA journal_mode").fetchone()[0]
    check.close()
    session.close()
    result["bytes_on_disk"] = disk_bytes(path)
    return result


def bench_agents(directory: str, items: int, rounds: int) -> dict:
    return alternate(rounds, ("RunjournalSession", agents_runjournal), ("SQLiteSession", agents_sqlite), directory, items)


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
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each pair, alternating which goes first")
    parser.add_argument("--dir", default=None, help="where the databases go (default: a temporary directory)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        results = {
            "params": {"steps": args.steps, "message_bytes": args.message_bytes, "items": args.items, "rounds": args.rounds},
            "langgraph": bench_langgraph(directory, args.steps, args.message_bytes, args.rounds),
            "agents": bench_agents(directory, args.items, args.rounds),
        }
    print(json.dumps(results, indent=2))
    if args.markdown:
        print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
