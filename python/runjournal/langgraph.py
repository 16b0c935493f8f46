"""LangGraph persistence on runjournal: :class:`RunjournalSaver` and
:class:`AsyncRunjournalSaver`, implementing langgraph-checkpoint's
``BaseCheckpointSaver``.

Layout (docs for it: python/README.md, "LangGraph"):

- One run per ``(thread_id, checkpoint_ns)``: key ``("langgraph:" + thread_id,
  0, "ns:" + checkpoint_ns)``. Every fact is a ``custom`` event whose ``kind``
  names it and whose ``data`` is JSON; serialized values are the
  serializer's opaque ``(type, bytes)``, the bytes base64.
- ``langgraph.checkpoint``: ``id``, ``parent``, ``checkpoint`` (without its
  channel values), ``metadata``, and ``blobs``: one entry per channel in
  ``new_versions``: ``[channel, version, "full", type, b64]``,
  ``[channel, version, "append", type, b64, base_version]`` (a list that
  extends the channel's previous stored version: only the new items are
  stored, so a growing message list costs its new messages, not the whole
  list, at each step) or ``[channel, version, "empty"]``.
- ``langgraph.writes``: ``checkpoint``, ``task``, ``path``, ``writes``
  (``[idx, channel, type, b64]``); a write already stored for
  ``(task, idx)`` is not stored again (special writes, negative idx, replace).
- Removals are events too, so the history stays auditable:
  ``langgraph.deleted`` (``delete_thread``: everything before it is gone),
  ``langgraph.pruned`` (``prune``: ``keep`` is the checkpoint left, or
  ``null``), ``langgraph.deleted_runs`` (``delete_for_runs``: checkpoints
  whose metadata ``run_id`` is listed are gone, with their writes).

Invariant: the saver's in-memory index of a run equals the fold of the run's
events up to ``next_seq``; every write appends at exactly ``next_seq``
(``expected_seq``), so a write by any other handle is seen (a conflict or a
fence) and the index is read again before the write is retried.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import random
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Optional

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    SerializerProtocol,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)

from . import AlreadyExistsError, AsyncJournal, ConflictError, FencedError, Journal, NotFoundError

__all__ = ["AsyncRunjournalSaver", "RunjournalSaver"]

GOAL_PREFIX = "langgraph:"
AGENT_PREFIX = "ns:"
KIND_CHECKPOINT = "langgraph.checkpoint"
KIND_WRITES = "langgraph.writes"
KIND_DELETED = "langgraph.deleted"
KIND_PRUNED = "langgraph.pruned"
KIND_DELETED_RUNS = "langgraph.deleted_runs"
_KINDS = {KIND_CHECKPOINT, KIND_WRITES, KIND_DELETED, KIND_PRUNED, KIND_DELETED_RUNS}
# Most events one copy_thread append carries (each event is at most 16 MiB).
_COPY_BATCH = 64


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


def _key(thread_id: str, checkpoint_ns: str) -> tuple:
    return (GOAL_PREFIX + str(thread_id), 0, AGENT_PREFIX + checkpoint_ns)


class _Index:
    """The fold of one ``(thread, namespace)`` run's saver events."""

    def __init__(self, thread_id: str, checkpoint_ns: str) -> None:
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.key = _key(thread_id, checkpoint_ns)
        self.lock = threading.RLock()
        self.run: Any = None
        self.next_seq = 0
        self.reset()

    def reset(self) -> None:
        # checkpoint id -> (checkpoint typed, metadata typed, parent id)
        self.checkpoints: dict = {}
        # checkpoint id -> {(task_id, idx): (task_id, channel, typed, task_path)}
        self.writes: dict = {}
        # (channel, version) -> ("full", typed) | ("append", typed, base) | ("empty",)
        self.blobs: dict = {}
        # The events since the last `deleted` (what copy_thread copies).
        self.live: list = []
        # channel -> its newest stored (version); values materialized lazily.
        self.latest: dict = {}
        self.values: dict = {}
        self.metadata: dict = {}

    def apply(self, kind: str, data: str) -> None:
        if kind not in _KINDS:
            return
        body = json.loads(data)
        if kind == KIND_DELETED:
            self.reset()
            return
        self.live.append((kind, data))
        if kind == KIND_CHECKPOINT:
            for blob in body["blobs"]:
                channel, version, mode = blob[0], blob[1], blob[2]
                if mode == "empty":
                    self.blobs[(channel, version)] = ("empty",)
                elif mode == "full":
                    self.blobs[(channel, version)] = ("full", (blob[3], _unb64(blob[4])))
                    self.latest[channel] = version
                else:
                    self.blobs[(channel, version)] = ("append", (blob[3], _unb64(blob[4])), blob[5])
                    self.latest[channel] = version
            checkpoint = body["checkpoint"]
            metadata = body["metadata"]
            self.checkpoints[body["id"]] = (
                (checkpoint[0], _unb64(checkpoint[1])),
                (metadata[0], _unb64(metadata[1])),
                body["parent"],
            )
        elif kind == KIND_WRITES:
            stored = self.writes.setdefault(body["checkpoint"], {})
            for idx, channel, type_, payload in body["writes"]:
                stored[(body["task"], idx)] = (body["task"], channel, (type_, _unb64(payload)), body["path"])
        elif kind == KIND_PRUNED:
            keep = body["keep"]
            for checkpoint_id in list(self.checkpoints):
                if checkpoint_id != keep:
                    self._forget(checkpoint_id)
        elif kind == KIND_DELETED_RUNS:
            run_ids = set(body["run_ids"])
            for checkpoint_id in list(self.checkpoints):
                if self.metadata_of(checkpoint_id, None).get("run_id") in run_ids:
                    self._forget(checkpoint_id)

    def _forget(self, checkpoint_id: str) -> None:
        self.checkpoints.pop(checkpoint_id, None)
        self.writes.pop(checkpoint_id, None)
        self.metadata.pop(checkpoint_id, None)

    def metadata_of(self, checkpoint_id: str, serde: Optional[SerializerProtocol]) -> dict:
        if checkpoint_id not in self.metadata:
            serde = serde or self.serde
            self.metadata[checkpoint_id] = serde.loads_typed(self.checkpoints[checkpoint_id][1])
        return self.metadata[checkpoint_id]

    def value(self, channel: str, version: Any, serde: SerializerProtocol) -> Any:
        """The channel's value at `version` (`_MISSING` when empty or unknown)."""
        cached = self.values.get(channel)
        if cached is not None and cached[0] == version:
            return cached[1]
        suffixes = []
        at = version
        value: Any = _MISSING
        while True:
            if cached is not None and cached[0] == at:
                value = list(cached[1])
                break
            blob = self.blobs.get((channel, at))
            if blob is None or blob[0] == "empty":
                if suffixes:
                    raise RuntimeError(
                        f"runjournal: thread {self.thread_id!r} namespace {self.checkpoint_ns!r}: "
                        f"channel {channel!r} version {at!r}, the base of an appended version, is missing"
                    )
                return _MISSING
            if blob[0] == "full":
                value = serde.loads_typed(blob[1])
                break
            suffixes.append(blob[1])
            at = blob[2]
        if suffixes:
            value = list(value)
            for suffix in reversed(suffixes):
                value.extend(serde.loads_typed(suffix))
        self.values[channel] = (version, value)
        return value


_MISSING = object()


class RunjournalSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer storing checkpoints and pending writes as
    events of a runjournal run per ``(thread, namespace)``.

    ``journal``: an open :class:`runjournal.Journal` (or :class:`AsyncJournal`).
    Durable journals make every ``put`` and ``put_writes`` durable when it
    returns; concurrent graphs share syncs (group commit).
    """

    def __init__(self, journal: Any, *, serde: Optional[SerializerProtocol] = None) -> None:
        super().__init__(serde=serde)
        if isinstance(journal, AsyncJournal):
            journal = journal.sync
        if not isinstance(journal, Journal):
            raise TypeError(f"RunjournalSaver needs a runjournal.Journal, not {type(journal).__name__}")
        self.journal = journal
        self._indexes: dict = {}
        self._lock = threading.Lock()

    # The index of each run, kept in step with the log.

    def _index(self, thread_id: str, checkpoint_ns: str) -> _Index:
        with self._lock:
            index = self._indexes.get((thread_id, checkpoint_ns))
            if index is None:
                index = _Index(thread_id, checkpoint_ns)
                index.serde = self.serde
                self._indexes[(thread_id, checkpoint_ns)] = index
            return index

    def _refresh(self, index: _Index, next_seq: Optional[int] = None) -> None:
        """Reads the run's events the index has not seen (none when `next_seq` says so)."""
        try:
            if next_seq is None:
                next_seq = self.journal.head(index.key)[0]
            if next_seq == index.next_seq:
                return
            envelopes = self.journal.read(index.key, index.next_seq)
        except NotFoundError:
            return
        for envelope in envelopes:
            event = envelope.to_dict()["event"]
            if event["type"] == "custom":
                index.apply(event["kind"], event["data"])
            index.next_seq = envelope.seq + 1

    def _namespaces(self, thread_id: Optional[str]) -> list:
        """The (thread, namespace, next_seq) of every saver run (of `thread_id`)."""
        if thread_id is None:
            records = [r for r in self.journal.runs() if r.run.goal.startswith(GOAL_PREFIX)]
        else:
            records = self.journal.runs(goal=GOAL_PREFIX + str(thread_id))
        found = []
        for record in records:
            if record.run.episode != 0 or not record.run.agent.startswith(AGENT_PREFIX):
                continue
            found.append((record.run.goal[len(GOAL_PREFIX) :], record.run.agent[len(AGENT_PREFIX) :], record.next_seq))
        return found

    def _fresh(self, thread_id: str, checkpoint_ns: str) -> _Index:
        index = self._index(thread_id, checkpoint_ns)
        with index.lock:
            self._refresh(index)
        return index

    def _append(self, index: _Index, build: Any) -> None:
        """Appends the events `build(index)` returns at the index's next seq and
        folds them in; on a conflict or a fence, reads the log and retries."""
        for attempt in range(3):
            with index.lock:
                # A live handle that appended last needs no read: any other
                # writer resumed the run first, which fences this handle.
                if index.run is None or index.run.next_seq != index.next_seq:
                    self._refresh(index)
                events = build(index)
                if not events:
                    return
                try:
                    if index.run is None:
                        index.run = self._open_run(index)
                        self._refresh(index)
                        events = build(index)
                    last = index.run.append(
                        [{"type": "custom", "kind": kind, "data": data} for kind, data in events],
                        expected_seq=index.next_seq,
                    )
                except (ConflictError, FencedError):
                    index.run = None
                    if attempt == 2:
                        raise
                    continue
                for kind, data in events:
                    index.apply(kind, data)
                index.next_seq = last + 1
                return

    def _open_run(self, index: _Index) -> Any:
        try:
            return self.journal.begin(index.key, {"caller": "runjournal.langgraph"})
        except AlreadyExistsError:
            run, _state = self.journal.resume(index.key)
            return run

    # BaseCheckpointSaver.

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Stores a checkpoint: one ``langgraph.checkpoint`` event."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns", "")
        stored = checkpoint.copy()
        values: dict = stored.pop("channel_values", {})  # type: ignore[misc]
        serialized_checkpoint = self.serde.dumps_typed(stored)
        serialized_metadata = self.serde.dumps_typed(get_checkpoint_metadata(config, metadata))
        parent = configurable.get("checkpoint_id")

        def build(index: _Index) -> list:
            blobs = []
            for channel, version in new_versions.items():
                if channel not in values:
                    blobs.append([channel, version, "empty"])
                    continue
                value = values[channel]
                blobs.append(self._blob(index, channel, version, value))
            body = {
                "id": checkpoint["id"],
                "parent": parent,
                "checkpoint": [serialized_checkpoint[0], _b64(serialized_checkpoint[1])],
                "metadata": [serialized_metadata[0], _b64(serialized_metadata[1])],
                "blobs": blobs,
            }
            return [(KIND_CHECKPOINT, json.dumps(body, separators=(",", ":")))]

        index = self._index(thread_id, checkpoint_ns)
        self._append(index, build)
        with index.lock:
            for channel, version in new_versions.items():
                if channel in values and isinstance(values[channel], list):
                    index.values[channel] = (version, list(values[channel]))
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def _blob(self, index: _Index, channel: str, version: Any, value: Any) -> list:
        """A full blob, or only the new items of a list extending the channel's newest version."""
        if isinstance(value, list) and value:
            base = index.latest.get(channel)
            if base is not None and base != version:
                previous = index.value(channel, base, self.serde)
                if (
                    isinstance(previous, list)
                    and previous is not _MISSING
                    and len(previous) <= len(value)
                    and value[: len(previous)] == previous
                ):
                    type_, payload = self.serde.dumps_typed(value[len(previous) :])
                    return [channel, version, "append", type_, _b64(payload), base]
        type_, payload = self.serde.dumps_typed(value)
        return [channel, version, "full", type_, _b64(payload)]

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Stores a task's pending writes: one ``langgraph.writes`` event."""
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable.get("checkpoint_ns", "")
        checkpoint_id = configurable["checkpoint_id"]
        serialized = [(WRITES_IDX_MAP.get(channel, idx), channel, self.serde.dumps_typed(value)) for idx, (channel, value) in enumerate(writes)]

        def build(index: _Index) -> list:
            stored = index.writes.get(checkpoint_id, {})
            fresh = [
                [idx, channel, typed[0], _b64(typed[1])]
                for idx, channel, typed in serialized
                if not (idx >= 0 and (task_id, idx) in stored)
            ]
            if not fresh:
                return []
            body = {"checkpoint": checkpoint_id, "task": task_id, "path": task_path, "writes": fresh}
            return [(KIND_WRITES, json.dumps(body, separators=(",", ":")))]

        self._append(self._index(thread_id, checkpoint_ns), build)

    def _tuple(self, index: _Index, checkpoint_id: str) -> CheckpointTuple:
        typed_checkpoint, _typed_metadata, parent = index.checkpoints[checkpoint_id]
        checkpoint = self.serde.loads_typed(typed_checkpoint)
        channel_values = {}
        for channel, version in checkpoint.get("channel_versions", {}).items():
            value = index.value(channel, version, self.serde)
            if value is not _MISSING:
                channel_values[channel] = list(value) if isinstance(value, list) else value
        stored = index.writes.get(checkpoint_id, {})
        ordered = sorted(stored.items(), key=lambda item: writes_sort_key(item[1][3], item[0][0], item[0][1]))
        configurable = {"thread_id": index.thread_id, "checkpoint_ns": index.checkpoint_ns}
        return CheckpointTuple(
            config={"configurable": {**configurable, "checkpoint_id": checkpoint_id}},
            checkpoint={**checkpoint, "channel_values": channel_values},
            metadata=dict(index.metadata_of(checkpoint_id, self.serde)),
            parent_config={"configurable": {**configurable, "checkpoint_id": parent}} if parent else None,
            pending_writes=[(task, channel, self.serde.loads_typed(typed)) for task, channel, typed, _ in (w for _, w in ordered)],
        )

    def get_tuple(self, config: RunnableConfig) -> Optional[CheckpointTuple]:
        """The checkpoint ``config`` names, or the thread's latest."""
        configurable = config["configurable"]
        index = self._fresh(str(configurable["thread_id"]), configurable.get("checkpoint_ns", ""))
        with index.lock:
            checkpoint_id = get_checkpoint_id(config)
            if checkpoint_id is None:
                if not index.checkpoints:
                    return None
                checkpoint_id = max(index.checkpoints)
            elif checkpoint_id not in index.checkpoints:
                return None
            return self._tuple(index, checkpoint_id)

    def list(
        self,
        config: Optional[RunnableConfig],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[RunnableConfig] = None,
        limit: Optional[int] = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (per thread and namespace), filtered by
        metadata, before a checkpoint, at most ``limit``."""
        configurable = (config or {}).get("configurable", {})
        thread_id = configurable.get("thread_id")
        wanted_ns = configurable.get("checkpoint_ns")
        wanted_id = configurable.get("checkpoint_id")
        before_id = get_checkpoint_id(before) if before else None
        remaining = limit
        runs = self._namespaces(None if thread_id is None else str(thread_id))
        for tid, checkpoint_ns, next_seq in sorted(runs):
            if wanted_ns is not None and checkpoint_ns != wanted_ns:
                continue
            index = self._index(tid, checkpoint_ns)
            with index.lock:
                self._refresh(index, next_seq)
                ids = sorted(index.checkpoints, reverse=True)
                found = []
                for checkpoint_id in ids:
                    if wanted_id and checkpoint_id != wanted_id:
                        continue
                    if before_id and checkpoint_id >= before_id:
                        continue
                    metadata = index.metadata_of(checkpoint_id, self.serde)
                    if filter and not all(metadata.get(k) == v for k, v in filter.items()):
                        continue
                    if remaining is not None:
                        if remaining <= 0:
                            break
                        remaining -= 1
                    found.append(self._tuple(index, checkpoint_id))
            yield from found
            if remaining is not None and remaining <= 0:
                return

    def delete_thread(self, thread_id: str) -> None:
        """Appends ``langgraph.deleted`` to each namespace's run of the thread:
        its checkpoints and writes are gone for the saver (the log keeps them)."""
        for tid, checkpoint_ns, _ in self._namespaces(str(thread_id)):
            self._append(
                self._index(tid, checkpoint_ns),
                lambda index: [(KIND_DELETED, "{}")] if index.live else [],
            )

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Appends ``langgraph.deleted_runs`` to each run holding a checkpoint of one of ``run_ids``."""
        wanted = {str(run_id) for run_id in run_ids}
        if not wanted:
            return
        body = json.dumps({"run_ids": sorted(wanted)})

        def build(index: _Index) -> list:
            hit = any(index.metadata_of(cid, self.serde).get("run_id") in wanted for cid in index.checkpoints)
            return [(KIND_DELETED_RUNS, body)] if hit else []

        for tid, checkpoint_ns, _ in self._namespaces(None):
            self._append(self._index(tid, checkpoint_ns), build)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Appends the source thread's live events to the target thread's runs
        (one run per namespace), so the target holds the same checkpoints and writes."""
        for _tid, checkpoint_ns, _ in self._namespaces(str(source_thread_id)):
            source = self._fresh(str(source_thread_id), checkpoint_ns)
            with source.lock:
                events = list(source.live)
            target = self._index(str(target_thread_id), checkpoint_ns)
            for start in range(0, len(events), _COPY_BATCH):
                chunk = events[start : start + _COPY_BATCH]
                self._append(target, lambda _index, chunk=chunk: chunk)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: appends ``langgraph.pruned`` keeping each namespace's
        latest checkpoint; ``delete``: :meth:`delete_thread`."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"prune strategy must be 'keep_latest' or 'delete', not {strategy!r}")
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread_id)
                continue
            for tid, checkpoint_ns, _ in self._namespaces(str(thread_id)):

                def build(index: _Index) -> list:
                    if len(index.checkpoints) <= 1:
                        return []
                    return [(KIND_PRUNED, json.dumps({"keep": max(index.checkpoints)}))]

                self._append(self._index(tid, checkpoint_ns), build)

    def get_next_version(self, current: Optional[str], channel: None) -> str:
        """Monotonic versions with a random tail (unique across copied threads)."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # The async twins run the blocking calls in the loop's executor (the GIL
    # is released while they wait for the journal).

    async def _run(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(function, *args, **kwargs))

    async def aget_tuple(self, config: RunnableConfig) -> Optional[CheckpointTuple]:
        """See :meth:`get_tuple`."""
        return await self._run(self.get_tuple, config)

    async def alist(
        self,
        config: Optional[RunnableConfig],
        *,
        filter: Optional[dict[str, Any]] = None,
        before: Optional[RunnableConfig] = None,
        limit: Optional[int] = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """See :meth:`list`."""
        items = await self._run(lambda: list(self.list(config, filter=filter, before=before, limit=limit)))
        for item in items:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """See :meth:`put`."""
        return await self._run(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """See :meth:`put_writes`."""
        return await self._run(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        """See :meth:`delete_thread`."""
        return await self._run(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """See :meth:`delete_for_runs`."""
        return await self._run(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """See :meth:`copy_thread`."""
        return await self._run(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """See :meth:`prune`."""
        return await self._run(self.prune, thread_ids, strategy=strategy)


class AsyncRunjournalSaver(RunjournalSaver):
    """:class:`RunjournalSaver` for async graphs (``graph.ainvoke``): built from a
    :class:`runjournal.AsyncJournal` or a :class:`runjournal.Journal`; every
    ``a``-method runs its journal calls in the loop's executor, so the event
    loop never blocks. The sync methods work too (from other threads)."""
