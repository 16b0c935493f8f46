"""A LangGraph graph checkpointed in runjournal, killed mid-run, resumed in a new process.

    python langgraph_kill_resume.py --db /tmp/lg.db --steps 40            # start (kill it with kill -9 any time)
    python langgraph_kill_resume.py --db /tmp/lg.db --steps 40 --resume   # continue where it stopped

Each step of the graph appends one message and writes its step number to
`<db>.progress`, so whoever kills the process can see how far it got. The
resumed process continues from the last checkpoint: the step that was running
when the process died runs again, no completed step runs twice.
"""

import argparse
import json
import operator
import sys
import time
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

import runjournal
from runjournal.langgraph import RunjournalSaver


class State(TypedDict):
    messages: Annotated[list, operator.add]
    step: int


def build(steps: int, delay: float, progress: str):
    def work(state: State) -> dict:
        time.sleep(delay)  # the model call this step stands for
        step = state["step"] + 1
        with open(progress, "w") as out:
            out.write(str(step))
        return {"messages": [f"step {step}"], "step": step}

    def route(state: State) -> str:
        return END if state["step"] >= steps else "work"

    graph = StateGraph(State)
    graph.add_node("work", work)
    graph.add_edge(START, "work")
    graph.add_conditional_edges("work", route)
    return graph


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--thread", default="kill-resume")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()

    journal = runjournal.Journal.open(args.db)
    saver = RunjournalSaver(journal)
    graph = build(args.steps, args.delay, args.db + ".progress").compile(checkpointer=saver)
    config = {"configurable": {"thread_id": args.thread}, "recursion_limit": args.steps + 10}
    before = saver.get_tuple(config)
    started_at = before.checkpoint["channel_values"].get("step", 0) if before else 0
    # `None` continues the thread from its last checkpoint; a fresh start gives the input.
    graph_input = None if args.resume else {"messages": ["start"], "step": 0}
    final = graph.invoke(graph_input, config, durability="sync")
    print(json.dumps({"started_at": started_at, "step": final["step"], "messages": final["messages"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
