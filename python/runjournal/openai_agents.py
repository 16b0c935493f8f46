"""OpenAI Agents SDK persistence on runjournal: :class:`RunjournalSession`
implements the SDK's ``Session`` protocol (``get_items``, ``add_items``,
``pop_item``, ``clear_session``).

Layout: one run per session, key ``("openai-agents:" + session_id, 0,
"session")``. It is append-only; every change is a ``custom`` event:

- ``agents.items``: ``data`` is the JSON list of the items one ``add_items`` added
  (one atomic event: all of them or none);
- ``agents.pop``: the newest item was removed (``data`` is the popped item);
- ``agents.clear``: every item before it was removed.

So the history stays auditable: ``journal.read(session.key)`` shows what was
added, popped and cleared, and when.

Invariant: the session's item list equals the fold of its run's events up to
``next_seq``; every change appends at exactly ``next_seq`` (``expected_seq``),
so a change made through another handle is read before this one is retried.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from typing import Any, Optional

from . import AlreadyExistsError, AsyncJournal, ConflictError, FencedError, Journal, NotFoundError

__all__ = ["RunjournalSession"]

GOAL_PREFIX = "openai-agents:"
AGENT = "session"
KIND_ITEMS = "agents.items"
KIND_POP = "agents.pop"
KIND_CLEAR = "agents.clear"


class RunjournalSession:
    """A conversation session stored in a runjournal run.

    ``session_id``: the session's id; ``journal``: an open
    :class:`runjournal.Journal` (or :class:`AsyncJournal`);
    ``session_settings``: the SDK's ``SessionSettings`` (its ``limit`` is the
    default of :meth:`get_items`).
    """

    session_settings: Any = None

    def __init__(self, session_id: str, journal: Any, session_settings: Any = None) -> None:
        if isinstance(journal, AsyncJournal):
            journal = journal.sync
        if not isinstance(journal, Journal):
            raise TypeError(f"RunjournalSession needs a runjournal.Journal, not {type(journal).__name__}")
        self.session_id = session_id
        self.journal = journal
        if session_settings is None:
            try:
                from agents.memory.session_settings import SessionSettings

                session_settings = SessionSettings()
            except ImportError:  # the SDK is optional for the session itself
                session_settings = None
        self.session_settings = session_settings
        self.key = (GOAL_PREFIX + session_id, 0, AGENT)
        self._lock = threading.RLock()
        self._run: Any = None
        self._next_seq = 0
        self._items: list = []

    # The fold of the session's events.

    def _apply(self, kind: str, data: str) -> None:
        if kind == KIND_ITEMS:
            self._items.extend(json.loads(data))
        elif kind == KIND_POP:
            if self._items:
                self._items.pop()
        elif kind == KIND_CLEAR:
            self._items.clear()

    def _refresh(self) -> None:
        try:
            if self.journal.head(self.key)[0] == self._next_seq:
                return
            envelopes = self.journal.read(self.key, self._next_seq)
        except NotFoundError:
            return
        for envelope in envelopes:
            event = envelope.to_dict()["event"]
            if event["type"] == "custom":
                self._apply(event["kind"], event["data"])
            self._next_seq = envelope.seq + 1

    def _change(self, build: Any) -> Any:
        """Appends the event `build()` returns (`(kind, data, result)` or None)
        at the next seq and folds it in; returns `result`."""
        for attempt in range(4):
            with self._lock:
                # A live handle that appended last needs no read: any other
                # writer resumed the run first, which fences this handle.
                if self._run is None or self._run.next_seq != self._next_seq:
                    self._refresh()
                change = build()
                if change is None:
                    return None
                kind, data, result = change
                try:
                    if self._run is None:
                        self._run = self._open_run()
                        continue
                    last = self._run.append(
                        [{"type": "custom", "kind": kind, "data": data}], expected_seq=self._next_seq
                    )
                except (ConflictError, FencedError):
                    self._run = None
                    if attempt == 3:
                        raise
                    continue
                self._apply(kind, data)
                self._next_seq = last + 1
                return result
        raise RuntimeError(f"runjournal: session {self.session_id!r}: could not append after 4 attempts")

    def _open_run(self) -> Any:
        try:
            return self.journal.begin(self.key, {"caller": "runjournal.openai_agents"})
        except AlreadyExistsError:
            run, _state = self.journal.resume(self.key)
            return run

    # The synchronous forms (the protocol's coroutines run them in an executor).

    def get_items_sync(self, limit: Optional[int] = None) -> list:
        """The items, oldest first; with ``limit`` (or the settings' limit) the newest ``limit``."""
        if limit is None and self.session_settings is not None:
            limit = getattr(self.session_settings, "limit", None)
        with self._lock:
            self._refresh()
            items = list(self._items)
        if limit is None or limit < 0:
            return items
        if limit == 0:
            return []
        return items[-limit:]

    def add_items_sync(self, items: list) -> None:
        """Adds ``items`` in one atomic event."""
        items = list(items)
        if not items:
            return
        data = json.dumps(items, separators=(",", ":"))
        self._change(lambda: (KIND_ITEMS, data, None))

    def pop_item_sync(self) -> Any:
        """Removes and returns the newest item (``None`` when empty); the pop is an event."""

        def build() -> Any:
            if not self._items:
                return None
            item = self._items[-1]
            return (KIND_POP, json.dumps(item, separators=(",", ":")), item)

        return self._change(build)

    def clear_session_sync(self) -> None:
        """Removes every item; the clear is an event."""
        self._change(lambda: (KIND_CLEAR, "{}", None) if self._items else None)

    # The SDK's Session protocol.

    async def _in_thread(self, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(function, *args))

    async def get_items(self, limit: Optional[int] = None) -> list:
        """See :meth:`get_items_sync`."""
        return await self._in_thread(self.get_items_sync, limit)

    async def add_items(self, items: list) -> None:
        """See :meth:`add_items_sync`."""
        await self._in_thread(self.add_items_sync, items)

    async def pop_item(self) -> Any:
        """See :meth:`pop_item_sync`."""
        return await self._in_thread(self.pop_item_sync)

    async def clear_session(self) -> None:
        """See :meth:`clear_session_sync`."""
        await self._in_thread(self.clear_session_sync)
