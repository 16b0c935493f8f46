"""RunjournalSession, modelled on the Agents SDK's own SQLiteSession tests:
ordering, limits, pop, clear, isolation between sessions, persistence across
instances and processes — and, append-only, every change is an event."""

import pytest
from agents.memory import Session, SessionSettings

import runjournal
from runjournal.openai_agents import RunjournalSession


def _items(*texts):
    return [{"role": "user", "content": text} for text in texts]


async def test_session_implements_the_sdk_protocol(journal):
    assert isinstance(RunjournalSession("s", journal), Session)


async def test_add_and_get_items_in_order(journal):
    session = RunjournalSession("s1", journal)
    assert await session.get_items() == []
    await session.add_items(_items("a", "b"))
    await session.add_items(_items("c"))
    assert await session.get_items() == _items("a", "b", "c")


async def test_get_items_limit_returns_the_latest_in_chronological_order(journal):
    session = RunjournalSession("s1", journal)
    await session.add_items(_items("a", "b", "c", "d"))
    assert await session.get_items(limit=2) == _items("c", "d")
    assert await session.get_items(limit=10) == _items("a", "b", "c", "d")
    assert await session.get_items(limit=0) == []


async def test_session_settings_limit_is_the_default_and_an_explicit_limit_wins(journal):
    session = RunjournalSession("s1", journal, session_settings=SessionSettings(limit=1))
    await session.add_items(_items("a", "b", "c"))
    assert await session.get_items() == _items("c")
    assert await session.get_items(limit=2) == _items("b", "c")


async def test_pop_item_removes_and_returns_the_newest(journal):
    session = RunjournalSession("s1", journal)
    assert await session.pop_item() is None
    await session.add_items(_items("a", "b"))
    assert await session.pop_item() == _items("b")[0]
    assert await session.get_items() == _items("a")
    assert await session.pop_item() == _items("a")[0]
    assert await session.pop_item() is None


async def test_clear_session_removes_everything(journal):
    session = RunjournalSession("s1", journal)
    await session.add_items(_items("a", "b"))
    await session.clear_session()
    assert await session.get_items() == []
    await session.add_items(_items("c"))
    assert await session.get_items() == _items("c")


async def test_sessions_are_isolated(journal):
    one = RunjournalSession("one", journal)
    two = RunjournalSession("two", journal)
    await one.add_items(_items("a"))
    await two.add_items(_items("b"))
    assert await one.get_items() == _items("a")
    assert await two.get_items() == _items("b")


async def test_a_new_instance_and_a_reopened_journal_see_the_items(tmp_path):
    journal = runjournal.Journal.open(tmp_path / "db")
    first = RunjournalSession("s1", journal)
    await first.add_items(_items("a", "b"))
    second = RunjournalSession("s1", journal)
    await second.add_items(_items("c"))  # fences `first`'s handle
    await first.add_items(_items("d"))  # ...which reads the log and retries
    assert await second.get_items() == _items("a", "b", "c", "d")
    del first, second
    journal.close()
    journal = runjournal.Journal.open(tmp_path / "db")
    assert await RunjournalSession("s1", journal).get_items() == _items("a", "b", "c", "d")
    journal.close()


async def test_complex_items_round_trip(journal):
    session = RunjournalSession("s1", journal)
    items = [
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{\"q\": \"x\"}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ünïcode ✓"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
    ]
    await session.add_items(items)
    assert await session.get_items() == items


async def test_every_change_is_an_event_so_the_history_is_auditable(journal):
    session = RunjournalSession("s1", journal)
    await session.add_items(_items("a", "b"))
    await session.pop_item()
    await session.clear_session()
    kinds = [e.event.kind for e in journal.read(session.key) if e.event.type == "custom"]
    assert kinds == ["agents.items", "agents.pop", "agents.clear"]
    assert journal.verify(session.key).events == 4


async def test_empty_add_is_a_no_op(journal):
    session = RunjournalSession("s1", journal)
    await session.add_items([])
    with pytest.raises(runjournal.NotFoundError):
        journal.verify(session.key)
