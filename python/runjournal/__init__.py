"""runjournal: an embedded, event-sourced, hash-chained journal for AI-agent runs.

The Python API of the Rust ``runjournal`` crate. A :class:`Journal` is the
embedded handle on one database; a :class:`Run` appends typed events to one
run with one epoch; resuming a run opens a newer epoch and fences older
handles. Every read verifies the blake3 chain. Every failure is a
:class:`Error` subclass carrying ``code``, ``run`` and ``seq``.

Blocking calls release the GIL, so threads append concurrently and share
fsyncs; :class:`AsyncJournal` runs them in an executor so the event loop never
blocks. A journal may only be used by the process that opened it: after
``os.fork()`` the child gets :class:`ForkedProcessError`.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Optional, Sequence

from . import _native
from ._native import (
    AlreadyExistsError,
    ClosedError,
    ConflictError,
    Error,
    FencedError,
    FinishedError,
    ForkedProcessError,
    IntegrityError,
    InvalidError,
    LaggedError,
    MismatchError,
    NotFoundError,
    OutOfOrderError,
    RefusedError,
    RemoteError,
    StorageError,
)

__all__ = [
    "AlreadyExistsError",
    "AsyncJournal",
    "AsyncRun",
    "AsyncSubscription",
    "ClosedError",
    "ConflictError",
    "Envelope",
    "Error",
    "FencedError",
    "FinishedError",
    "ForkedProcessError",
    "IntegrityError",
    "InvalidError",
    "Journal",
    "LaggedError",
    "Message",
    "MismatchError",
    "NotFoundError",
    "OutOfOrderError",
    "RefusedError",
    "RemoteError",
    "ResumeState",
    "Run",
    "RunDiff",
    "RunKey",
    "RunRecord",
    "StorageError",
    "Subscription",
    "VerifyReport",
]


class RunKey(NamedTuple):
    """A run's stable identity: ``(goal, episode, agent)``."""

    goal: str
    episode: int
    agent: str

    def __str__(self) -> str:
        return f"{self.goal}/{self.episode}/{self.agent}"


def _key(key: Any) -> tuple:
    if isinstance(key, dict):
        return (key["goal"], int(key["episode"]), key["agent"])
    goal, episode, agent = key
    return (goal, int(episode), agent)


class Record:
    """A read-only view of a JSON object from the journal.

    Attributes are the JSON fields (nested objects are records too, a run key
    is a :class:`RunKey`); :meth:`to_dict` returns the JSON itself.
    """

    __slots__ = ("_data",)

    def __init__(self, data: dict) -> None:
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str) -> Any:
        try:
            value = self._data[name]
        except KeyError:
            raise AttributeError(f"{type(self).__name__} has no field {name!r}") from None
        return _wrap(value)

    def __getitem__(self, name: str) -> Any:
        return _wrap(self._data[name])

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __contains__(self, name: str) -> bool:
        return name in self._data

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Record):
            return self._data == other._data
        return NotImplemented

    def __hash__(self) -> int:
        return hash(json.dumps(self._data, sort_keys=True))

    def __dir__(self) -> list:
        return sorted(self._data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    def to_dict(self) -> dict:
        """The JSON object (a deep copy)."""
        return json.loads(json.dumps(self._data))


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"goal", "episode", "agent"}:
            return RunKey(value["goal"], value["episode"], value["agent"])
        return Record(value)
    if isinstance(value, list):
        return [_wrap(item) for item in value]
    return value


class ResumeState(Record):
    """What a runtime resumes from (docs/resume-state.md): ``run``, ``status``,
    ``recoverable``, ``meta``, ``epoch``, ``iteration``, ``segment``,
    ``transcript``, ``compaction``, ``phases`` (``completed``, ``active``),
    ``handoffs``, ``tasks``, ``died``, ``output``, ``failure``, ``usage``,
    ``segments``, ``provenance``, ``resources``, ``anomalies``, ``last_seq``,
    ``head``, ``active_ms``, ``wall_ms``, ``handoff_success_rate``."""

    __slots__ = ()

    # The fields (docs/resume-state.md), for type checkers: values come from
    # the JSON through ``__getattr__``.
    run: RunKey
    status: str
    recoverable: bool
    meta: Record
    active_ms: int
    wall_ms: int
    last_seq: Optional[int]
    head: str
    epoch: int
    iteration: int
    segment: int
    transcript: list
    compaction: Record
    phases: Record
    handoffs: list
    handoff_success_rate: Optional[float]
    tasks: list
    died: Optional[Record]
    output: Optional[str]
    failure: Optional[Record]
    usage: Record
    segments: list
    provenance: Record
    resources: list
    anomalies: list

    def completed_phase_indices(self) -> list:
        """The indices of completed phases, in order: the phases to skip."""
        return [phase["index"] for phase in self._data["phases"]["completed"]]


class Envelope(Record):
    """One stored event: ``run``, ``seq``, ``epoch``, ``ts``, ``hash`` and ``event``
    (its ``type`` and fields)."""

    __slots__ = ()

    run: RunKey
    seq: int
    epoch: int
    ts: int
    hash: str
    event: Record


class RunRecord(Record):
    """A run as listed: ``run``, ``status``, ``created_ts``, ``next_seq``,
    ``epoch``, ``head``, ``last_ts``, ``fork`` (``run`` and ``seq`` or ``None``)."""

    __slots__ = ()


class RunDiff(Record):
    """Where two runs' histories part: ``common`` (shared events), ``a`` and
    ``b`` (the first event of each after it) and ``state_differences``."""

    __slots__ = ()


class VerifyReport(NamedTuple):
    """What ``verify`` found: the run, its event count and its head hash."""

    run: RunKey
    events: int
    head: str


class Message(NamedTuple):
    """One transcript message for :meth:`Run.step`."""

    role: str
    content: str
    name: Optional[str] = None
    tool_call_id: Optional[str] = None

    def to_dict(self) -> dict:
        """The message's JSON form."""
        data = {"role": self.role, "content": self.content}
        if self.name is not None:
            data["name"] = self.name
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        return data


def _message(message: Any) -> dict:
    if isinstance(message, Message):
        return message.to_dict()
    if isinstance(message, dict):
        return message
    if isinstance(message, Record):
        return message.to_dict()
    role, content = message
    return {"role": role, "content": content}


def _state(text: str) -> ResumeState:
    return ResumeState(json.loads(text))


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Run:
    """A handle on one run, appending with one epoch.

    Each typed method appends one event and returns its seq; it is refused
    (:class:`RefusedError`, nothing written) when the fold would ignore it.
    """

    __slots__ = ("_native", "resume_state", "output", "__weakref__")

    def __init__(self, native: Any, resume_state: Optional[ResumeState] = None) -> None:
        self._native = native
        #: The state the run was begun or resumed with (scoped form).
        self.resume_state = resume_state
        #: What the scoped form records as ``run_completed``'s output.
        self.output: Optional[str] = None

    def __repr__(self) -> str:
        return f"Run({self.key}, epoch={self.epoch})"

    @property
    def key(self) -> RunKey:
        """The run's key."""
        return RunKey(*self._native.key)

    @property
    def epoch(self) -> int:
        """The epoch this handle writes with."""
        return self._native.epoch

    @property
    def next_seq(self) -> int:
        """The seq the next append gets."""
        return self._native.next_seq

    def state(self) -> ResumeState:
        """The run's resume state including this handle's appends."""
        return _state(self._native.state())

    def _typed(self, event: dict) -> int:
        return self._native.typed(_dumps(event))

    # The typed appends, one per typed Rust method.

    def step(self, messages: Iterable[Any]) -> int:
        """Records a step: its messages (``Message``, dicts or ``(role, content)``) join the transcript."""
        return self._typed({"type": "step", "messages": [_message(m) for m in messages]})

    def turn_completed(self) -> int:
        """Records the end of a turn."""
        return self._typed({"type": "turn_completed"})

    def phase_started(self, index: int, name: str) -> int:
        """Records the start of phase ``index``."""
        return self._typed({"type": "phase_started", "index": index, "name": name})

    def phase_completed(self, index: int, name: str, output: str) -> int:
        """Records the completion of phase ``index`` with its output."""
        return self._typed({"type": "phase_completed", "index": index, "name": name, "output": output})

    def compaction_started(
        self,
        source: str = "structured",
        *,
        id: Optional[str] = None,
        messages: Optional[int] = None,
        tokens: Optional[int] = None,
    ) -> int:
        """Records the start of a context compaction (``source``: ``structured`` or ``scraped``)."""
        return self._typed(
            {
                "type": "compaction_started",
                "id": id,
                "source": source,
                "messages_before": messages,
                "tokens_before": tokens,
            }
        )

    def compaction_done(
        self,
        source: str = "structured",
        *,
        id: Optional[str] = None,
        summary: Optional[str] = None,
        messages: Optional[int] = None,
        tokens: Optional[int] = None,
    ) -> int:
        """Records the end of a context compaction; a new segment starts."""
        return self._typed(
            {
                "type": "compaction_done",
                "id": id,
                "source": source,
                "summary": summary,
                "messages_after": messages,
                "tokens_after": tokens,
            }
        )

    def handoff_sent(
        self,
        id: str,
        from_: str,
        to: str,
        *,
        content_hash: str,
        generation: int = 0,
        version: str = "1.0.0",
        timeout_ms: int = 60_000,
    ) -> int:
        """Records a handoff sent to agent ``to`` (``content_hash``: hex digest of the payload)."""
        return self._typed(
            {
                "type": "handoff_sent",
                "id": id,
                "from": from_,
                "to": to,
                "generation": generation,
                "version": version,
                "content_hash": content_hash,
                "timeout_ms": timeout_ms,
            }
        )

    def handoff_acked(self, id: str, by: str) -> int:
        """Records the receiver's ack; refused unless ``by`` is the receiver and it is pending."""
        return self._typed({"type": "handoff_acked", "id": id, "by": by})

    def handoff_rejected(self, id: str, by: str, reason: str) -> int:
        """Records the receiver's rejection; refused unless ``by`` is the receiver and it is pending."""
        return self._typed({"type": "handoff_rejected", "id": id, "by": by, "reason": reason})

    def handoff_timed_out(self, id: str) -> int:
        """Records that a pending handoff timed out."""
        return self._typed({"type": "handoff_timed_out", "id": id})

    def task_claimed(self, task: str, agent: str, priority: int = 0, confidence: float = 1.0) -> int:
        """Records a claim on a task (priority 0–3, confidence 0.0–1.0)."""
        return self._typed(
            {"type": "task_claimed", "task": task, "agent": agent, "priority": priority, "confidence": confidence}
        )

    def task_completed(self, task: str, agent: str, result: str = "success", summary: Optional[str] = None) -> int:
        """Records a task's completion (``success``, ``partial``, ``failed``); refused unless ``agent`` holds it."""
        return self._typed(
            {"type": "task_completed", "task": task, "agent": agent, "result": result, "summary": summary}
        )

    def agent_died(self, reason: str, exit_code: Optional[int] = None) -> int:
        """Records that the agent's process died (the run stays recoverable)."""
        return self._typed({"type": "agent_died", "reason": reason, "exit_code": exit_code})

    def teardown(self, resource: str, error: Optional[str] = None) -> int:
        """Records the teardown of a resource, with its error if it failed."""
        return self._typed({"type": "teardown", "resource": resource, "error": error})

    def custom(self, kind: str, data: str) -> int:
        """Records an application-defined fact."""
        return self._typed({"type": "custom", "kind": kind, "data": data})

    def append(self, events: Sequence[dict], *, expected_seq: Optional[int] = None) -> int:
        """Appends events (JSON-form dicts, ``type``-tagged) as one atomic batch; returns
        the last seq. With ``expected_seq`` the batch must start there, else
        :class:`ConflictError` and nothing is written."""
        return self._native.append(_dumps(list(events)), expected_seq)

    # Outcomes: each is a run boundary, durable when it returns.

    def finish(self, output: Optional[str] = None) -> int:
        """Records ``run_completed`` with ``output``."""
        return self._native.finish("success", output=output)

    def fail(self, kind: str, message: str) -> int:
        """Records ``run_failed`` with the error's kind and message."""
        return self._native.finish("failure", kind=kind, message=message)

    def interrupt(self) -> int:
        """Records ``run_interrupted`` (shutdown): the run stays recoverable."""
        return self._native.finish("shutdown")


def _outcome_of(run: Run, exc_type: Any, exc: Any) -> tuple:
    if exc_type is None:
        return ("success", run.output, None, None)
    if issubclass(exc_type, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
        return ("shutdown", None, None, None)
    kind = exc_type.__qualname__
    module = getattr(exc_type, "__module__", "builtins")
    if module not in ("builtins", None):
        kind = f"{module}.{kind}"
    return ("failure", None, kind, str(exc))


class _Scoped:
    """``with journal.run(key, meta) as run:`` — see :meth:`Journal.run`."""

    def __init__(self, journal: "Journal", key: Any, meta: Optional[dict]) -> None:
        self._journal = journal
        self._key = _key(key)
        self._meta = dict(meta or {})
        self._run: Optional[Run] = None

    def __enter__(self) -> Run:
        meta = self._meta
        try:
            run, state = self._journal.resume(self._key, backend=meta.get("backend"), model=meta.get("model"))
        except NotFoundError:
            run = self._journal.begin(self._key, meta)
            state = run.state()
        run.resume_state = state
        self._run = run
        return run

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        assert self._run is not None
        outcome, output, kind, message = _outcome_of(self._run, exc_type, exc)
        self._run._native.finish(outcome, output=output, kind=kind, message=message)
        return False


class Subscription:
    """A live stream of a run's (or every run's) envelopes: history first, then
    new events as they are appended. Iterating blocks (GIL released) until
    the next envelope; :meth:`recv` waits at most ``timeout`` seconds."""

    def __init__(self, native: Any) -> None:
        self._native = native

    def recv(self, timeout: Optional[float] = None) -> Optional[Envelope]:
        """The next envelope, or ``None`` when ``timeout`` seconds pass first."""
        while True:
            wait = 0.2 if timeout is None else timeout
            text = self._native.recv(wait)
            if text is not None:
                return Envelope(json.loads(text))
            if timeout is not None:
                return None

    def __iter__(self) -> Iterator[Envelope]:
        return self

    def __next__(self) -> Envelope:
        try:
            envelope = self.recv()
        except ClosedError:
            raise StopIteration from None
        assert envelope is not None
        return envelope


class Journal:
    """An open journal (one sled database). Use :meth:`open`."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @classmethod
    def open(cls, path: Any, durability: str = "durable") -> "Journal":
        """Opens the database at ``path`` (created when missing). ``durability``:
        ``"durable"`` (an append returns once synced; concurrent appends share
        one sync) or ``"buffered"`` (appends return at once; run boundaries
        are still durable)."""
        import os

        return cls(_native.Journal.open(os.fspath(path), durability))

    @classmethod
    def connect(cls, target: Any, token: Optional[str] = None, *, durability: Optional[str] = None) -> "Journal":
        """Connects to the process that serves a journal (:meth:`serve`, or
        ``runjournal serve``): ``target`` is the database path (its socket
        ``<path>/runjournal.sock``) or an ``http://host:port`` address with the
        server's bearer ``token``. The handle has the same API as an opened
        one; many processes (``multiprocessing`` workers) share one database
        this way. ``durability`` overrides the owner's for this handle's writes.
        An unreachable server or a write whose outcome is unknown is a
        :class:`RemoteError`."""
        import os

        if not isinstance(target, str):
            target = os.fspath(target)
        return cls(_native.Journal.connect(target, token, durability))

    def serve(self) -> str:
        """Serves this journal on its Unix socket so other processes can
        :meth:`connect`; returns the socket's path. Serving stops at
        :meth:`stop_serving` or :meth:`close`."""
        return self._native.serve()

    def stop_serving(self) -> None:
        """Stops serving this journal to other processes."""
        self._native.stop_serving()

    @property
    def connected(self) -> bool:
        """Whether this handle is connected to another process's journal."""
        return self._native.connected

    def close(self) -> None:
        """Lets go of the journal (the store closes once no run handle holds it;
        serving stops)."""
        self._native.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def pid(self) -> int:
        """The process that opened the journal (the only one that may use it)."""
        return self._native.pid

    @property
    def durability(self) -> str:
        """``"durable"`` or ``"buffered"``."""
        return self._native.durability

    # Runs.

    def begin(self, key: Any, meta: Optional[dict] = None) -> Run:
        """Creates the run ``key`` (``run_started`` with ``meta``: ``agent_name``,
        ``caller``, ``prompt``, ``model``, ``backend``, ``labels``, …)."""
        return Run(self._native.begin(_key(key), _dumps(meta or {})))

    def resume(
        self,
        key: Any,
        *,
        backend: Optional[str] = None,
        model: Optional[str] = None,
        agent_name: Optional[str] = None,
    ) -> tuple:
        """Resumes ``key`` in a new epoch (fencing older handles): ``(run, state)``.
        Expected meta fields that differ raise :class:`MismatchError`, appending nothing."""
        native, state = self._native.resume(_key(key), backend, model, agent_name)
        return (Run(native, _state(state)), _state(state))

    def resume_latest(self, goal: str, agent: str) -> tuple:
        """Resumes the newest recoverable episode of ``(goal, agent)``: ``(run, state)``."""
        native, state = self._native.resume_latest(goal, agent)
        return (Run(native, _state(state)), _state(state))

    def next_episode(self, goal: str) -> int:
        """One more than the highest episode of ``goal`` (0 for a new goal)."""
        return self._native.next_episode(goal)

    def latest_episode(self, goal: str, agent: str) -> Optional[int]:
        """The highest episode of ``(goal, agent)``, or ``None``."""
        return self._native.latest_episode(goal, agent)

    def run(self, key: Any, meta: Optional[dict] = None) -> _Scoped:
        """The scoped form: ``with journal.run(key, meta) as run:`` begins the run
        (or resumes it when recoverable, expecting ``meta``'s backend and
        model; ``run.resume_state`` says where it stopped) and records its
        outcome on every exit: normal exit → ``run_completed`` (with
        ``run.output``), ``KeyboardInterrupt``/``SystemExit`` →
        ``run_interrupted``, any other exception → ``run_failed`` with the
        exception's type and message (the exception propagates). A finished
        run raises :class:`FinishedError` and the body never runs."""
        return _Scoped(self, key, meta)

    # Reads: every one verifies the chain.

    def head(self, key: Any) -> tuple:
        """``(next_seq, epoch)`` of the run as stored, without reading its events
        (:class:`NotFoundError` when there is no such run)."""
        return tuple(self._native.head(_key(key)))

    def state(self, key: Any) -> ResumeState:
        """The run's resume state as of its last event."""
        return _state(self._native.state(_key(key)))

    def state_at(self, key: Any, seq: int) -> ResumeState:
        """The run's resume state as of its own seq ``seq`` (time travel)."""
        return _state(self._native.state_at(_key(key), seq))

    def history(self, key: Any) -> list:
        """The run's whole history (a fork's ancestor prefixes, then its own events)."""
        return [Envelope(item) for item in json.loads(self._native.history(_key(key)))]

    def read(self, key: Any, from_seq: int = 0) -> list:
        """The run's own events from ``from_seq``."""
        return [Envelope(item) for item in json.loads(self._native.read(_key(key), from_seq))]

    def verify(self, key: Any) -> VerifyReport:
        """Verifies the run's chain; :class:`IntegrityError` names the first bad seq."""
        events, head = self._native.verify(_key(key))
        return VerifyReport(RunKey(*_key(key)), events, head)

    def runs(self, *, goal: Optional[str] = None, agent: Optional[str] = None, status: Optional[str] = None) -> list:
        """The runs passing the filter, ordered by key."""
        return [RunRecord(item) for item in json.loads(self._native.runs(goal, agent, status))]

    def recoverable(self) -> list:
        """The running or interrupted runs' resume states."""
        return [ResumeState(item) for item in json.loads(self._native.recoverable())]

    def metrics(self) -> dict:
        """The write path's counters: ``batches``, ``events``, ``bytes``, ``groups``,
        ``flushes`` (syncs), ``flush_micros_total``, ``flush_micros_max``."""
        return dict(self._native.metrics())

    def sync(self) -> None:
        """Syncs everything applied so far to stable storage."""
        self._native.sync()

    # Subscriptions.

    def subscribe(self, key: Any, from_seq: int = 0, buffer: int = 1024) -> Subscription:
        """The run's events from ``from_seq``, then live."""
        return Subscription(self._native.subscribe(_key(key), from_seq, buffer))

    def subscribe_all(self, buffer: int = 1024) -> Subscription:
        """Every run's new events."""
        return Subscription(self._native.subscribe_all(buffer))

    # Lineage.

    def fork(self, parent: Any, at_seq: int, child: Any) -> Run:
        """Forks ``parent`` after its seq ``at_seq`` into the new run ``child``."""
        return Run(self._native.fork(_key(parent), at_seq, _key(child)))

    def fanout(self, parent: Any, at_seq: int, n: int) -> list:
        """Forks ``parent`` at ``at_seq`` into ``n`` new episodes (best-of-N)."""
        return [Run(native) for native in self._native.fanout(_key(parent), at_seq, n)]

    def rewind(self, key: Any, at_seq: int) -> Run:
        """Rewinds ``key`` to ``at_seq``: a fork that goes on; the original is superseded."""
        return Run(self._native.rewind(_key(key), at_seq))

    def diff(self, a: Any, b: Any) -> RunDiff:
        """Where two runs' histories part."""
        return RunDiff(json.loads(self._native.diff(_key(a), _key(b))))

    def parent(self, key: Any) -> Optional[RunKey]:
        """The run ``key`` was forked from, if any."""
        parent = self._native.parent(_key(key))
        return None if parent is None else RunKey(*parent)


# asyncio: the same API, each blocking call run in the loop's executor (the
# GIL is released inside it), so the event loop never blocks.


async def _in_thread(function: Callable, *args: Any, **kwargs: Any) -> Any:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(function, *args, **kwargs))


class AsyncRun:
    """:class:`Run` for asyncio: every append is a coroutine run in an executor."""

    def __init__(self, run: Run) -> None:
        self.sync = run

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.sync, name)
        if name in _RUN_BLOCKING:

            async def call(*args: Any, **kwargs: Any) -> Any:
                return await _in_thread(attribute, *args, **kwargs)

            call.__name__ = name
            call.__doc__ = attribute.__doc__
            return call
        return attribute


# Every public method of Run appends (a typed event, a raw batch, an outcome)
# and waits for the store, but ``state``, which reads the handle's own fold.
_RUN_BLOCKING = frozenset(
    name for name, member in vars(Run).items() if inspect.isfunction(member) and not name.startswith("_")
) - {"state"}


class _AsyncScoped:
    def __init__(self, scoped: _Scoped) -> None:
        self._scoped = scoped

    async def __aenter__(self) -> AsyncRun:
        return AsyncRun(await _in_thread(self._scoped.__enter__))

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        return await _in_thread(self._scoped.__exit__, exc_type, exc, tb)


class AsyncSubscription:
    """:class:`Subscription` for asyncio: ``async for envelope in subscription``."""

    def __init__(self, subscription: Subscription) -> None:
        self.sync = subscription

    async def recv(self, timeout: Optional[float] = None) -> Optional[Envelope]:
        """The next envelope, or ``None`` after ``timeout`` seconds."""
        while True:
            envelope = await _in_thread(self.sync.recv, 0.2 if timeout is None else timeout)
            if envelope is not None or timeout is not None:
                return envelope

    def __aiter__(self) -> "AsyncSubscription":
        return self

    async def __anext__(self) -> Envelope:
        try:
            envelope = await self.recv()
        except ClosedError:
            raise StopAsyncIteration from None
        assert envelope is not None
        return envelope


class AsyncJournal:
    """:class:`Journal` for asyncio: the same methods as coroutines, run in the
    loop's executor with the GIL released, so the loop keeps running."""

    def __init__(self, journal: Journal) -> None:
        self.sync = journal

    @classmethod
    async def open(cls, path: Any, durability: str = "durable") -> "AsyncJournal":
        """Opens the database at ``path`` (see :meth:`Journal.open`)."""
        return cls(await _in_thread(Journal.open, path, durability))

    @classmethod
    async def connect(cls, target: Any, token: Optional[str] = None, **kwargs: Any) -> "AsyncJournal":
        """Connects to a served journal (see :meth:`Journal.connect`)."""
        return cls(await _in_thread(Journal.connect, target, token, **kwargs))

    async def close(self) -> None:
        """See :meth:`Journal.close`."""
        await _in_thread(self.sync.close)

    async def __aenter__(self) -> "AsyncJournal":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def begin(self, key: Any, meta: Optional[dict] = None) -> AsyncRun:
        """See :meth:`Journal.begin`."""
        return AsyncRun(await _in_thread(self.sync.begin, key, meta))

    async def resume(self, key: Any, **expect: Any) -> tuple:
        """See :meth:`Journal.resume`."""
        run, state = await _in_thread(self.sync.resume, key, **expect)
        return (AsyncRun(run), state)

    async def resume_latest(self, goal: str, agent: str) -> tuple:
        """See :meth:`Journal.resume_latest`."""
        run, state = await _in_thread(self.sync.resume_latest, goal, agent)
        return (AsyncRun(run), state)

    def run(self, key: Any, meta: Optional[dict] = None) -> _AsyncScoped:
        """``async with journal.run(key, meta) as run:`` (see :meth:`Journal.run`)."""
        return _AsyncScoped(self.sync.run(key, meta))

    def subscribe(self, key: Any, from_seq: int = 0, buffer: int = 1024) -> AsyncSubscription:
        """See :meth:`Journal.subscribe`."""
        return AsyncSubscription(self.sync.subscribe(key, from_seq, buffer))

    def subscribe_all(self, buffer: int = 1024) -> AsyncSubscription:
        """See :meth:`Journal.subscribe_all`."""
        return AsyncSubscription(self.sync.subscribe_all(buffer))

    def metrics(self) -> dict:
        """See :meth:`Journal.metrics` (does not block)."""
        return self.sync.metrics()

    def __getattr__(self, name: str) -> Any:
        if name not in _JOURNAL_BLOCKING:
            raise AttributeError(name)
        attribute = getattr(self.sync, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = await _in_thread(attribute, *args, **kwargs)
            if isinstance(result, Run):
                return AsyncRun(result)
            if name == "fanout":
                return [AsyncRun(run) for run in result]
            return result

        call.__name__ = name
        call.__doc__ = attribute.__doc__
        return call


_JOURNAL_BLOCKING = frozenset(
    {
        "next_episode",
        "latest_episode",
        "state",
        "state_at",
        "history",
        "read",
        "verify",
        "runs",
        "recoverable",
        "sync",
        "fork",
        "fanout",
        "rewind",
        "diff",
        "parent",
    }
)
