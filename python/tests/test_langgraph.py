"""RunjournalSaver under a real LangGraph graph: persistence across journals,
a growing message list stored as its new items, and removals as events."""

import operator
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph

import runjournal
from runjournal.langgraph import KIND_CHECKPOINT, RunjournalSaver


class State(TypedDict):
    messages: Annotated[list, operator.add]
    step: int


def _graph(steps):
    def work(state):
        step = state["step"] + 1
        return {"messages": [f"message {step} " + "x" * 200], "step": step}

    graph = StateGraph(State)
    graph.add_node("work", work)
    graph.add_edge(START, "work")
    graph.add_conditional_edges("work", lambda state: END if state["step"] >= steps else "work")
    return graph


def _config(thread="t1", steps=30):
    return {"configurable": {"thread_id": thread}, "recursion_limit": steps + 10}


def test_graph_state_survives_reopening_the_journal(tmp_path):
    journal = runjournal.Journal.open(tmp_path / "db")
    graph = _graph(5).compile(checkpointer=RunjournalSaver(journal))
    graph.invoke({"messages": [], "step": 0}, _config())
    journal.close()
    del graph
    journal = runjournal.Journal.open(tmp_path / "db")
    saver = RunjournalSaver(journal)
    state = _graph(5).compile(checkpointer=saver).get_state(_config())
    assert state.values["step"] == 5
    assert len(state.values["messages"]) == 5
    history = list(saver.list(_config()))
    assert len(history) == 7  # input, 5 steps, and the loop's first checkpoint
    assert [t.metadata["step"] for t in history] == sorted((t.metadata["step"] for t in history), reverse=True)
    journal.close()


def test_growing_message_list_is_stored_as_its_new_items(journal):
    saver = RunjournalSaver(journal)
    steps = 30
    _graph(steps).compile(checkpointer=saver).invoke({"messages": [], "step": 0}, _config(steps=steps))
    key = ("langgraph:t1", 0, "ns:")
    modes = []
    for envelope in journal.read(key):
        event = envelope.event.to_dict()
        if event["type"] == "custom" and event["kind"] == KIND_CHECKPOINT:
            import json

            for blob in json.loads(event["data"])["blobs"]:
                if blob[0] == "messages":
                    modes.append(blob[2])
    # The first non-empty version is full; every later one stores only its new message.
    assert modes.count("full") == 1
    assert modes.count("append") == steps
    values = saver.get_tuple(_config()).checkpoint["channel_values"]
    assert [m.split(" ")[1] for m in values["messages"]] == [str(i) for i in range(1, steps + 1)]


def test_delete_thread_is_an_event_and_the_log_keeps_the_history(journal):
    saver = RunjournalSaver(journal)
    _graph(3).compile(checkpointer=saver).invoke({"messages": [], "step": 0}, _config())
    key = ("langgraph:t1", 0, "ns:")
    events_before = journal.verify(key).events
    saver.delete_thread("t1")
    assert saver.get_tuple(_config()) is None
    assert journal.verify(key).events == events_before + 1
    assert journal.read(key)[-1].event.kind == "langgraph.deleted"
    # A fresh saver folds the log to the same answer.
    assert RunjournalSaver(journal).get_tuple(_config()) is None
    # And the thread can start again.
    _graph(2).compile(checkpointer=saver).invoke({"messages": [], "step": 0}, _config())
    assert saver.get_tuple(_config()).checkpoint["channel_values"]["step"] == 2
