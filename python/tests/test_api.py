"""The Python API: typed appends, the scoped form, reads, errors, lineage, subscriptions."""

import json
import threading

import pytest

import runjournal
from runjournal import Message, RunKey

KEY = RunKey("fix-login-bug", 0, "orchestrator-0")


def _last_event(journal, key=KEY):
    return journal.read(key)[-1].event


# Every typed append: (method, args, kwargs, the event's JSON fields).
TYPED = [
    ("step", ([Message("user", "hi"), ("assistant", "hello"), {"role": "tool", "content": "ok", "tool_call_id": "c1"}],), {},
     {"type": "step"}),
    ("turn_completed", (), {}, {"type": "turn_completed"}),
    ("phase_started", (0, "investigate"), {}, {"type": "phase_started", "index": 0, "name": "investigate"}),
    ("compaction_started", ("structured",), {"id": "c1", "messages": 40, "tokens": 9000},
     {"type": "compaction_started", "id": "c1", "source": "structured", "messages_before": 40, "tokens_before": 9000}),
    ("handoff_sent", ("h1", "orchestrator-0", "worker-1"), {"generation": 2, "version": "1.2.3", "content_hash": "ab", "timeout_ms": 5},
     {"type": "handoff_sent", "id": "h1", "from": "orchestrator-0", "to": "worker-1", "generation": 2, "version": "1.2.3"}),
    ("handoff_timed_out", ("h1",), {}, {"type": "handoff_timed_out", "id": "h1"}),
    ("task_claimed", ("t1", "orchestrator-0"), {"priority": 2, "confidence": 0.5},
     {"type": "task_claimed", "task": "t1", "agent": "orchestrator-0", "priority": 2, "confidence": 0.5}),
    ("task_completed", ("t1", "orchestrator-0"), {"result": "partial", "summary": "half"},
     {"type": "task_completed", "task": "t1", "result": "partial", "summary": "half"}),
    ("teardown", ("sandbox",), {"error": "busy"}, {"type": "teardown", "resource": "sandbox", "error": "busy"}),
    ("custom", ("note", "{\"x\":1}"), {}, {"type": "custom", "kind": "note", "data": "{\"x\":1}"}),
    ("agent_died", ("oom",), {"exit_code": 137}, {"type": "agent_died", "reason": "oom", "exit_code": 137}),
]


def test_every_typed_append_writes_its_event(journal):
    run = journal.begin(KEY, {"model": "m1", "backend": "claude"})
    for name, args, kwargs, expected in TYPED:
        if name == "turn_completed":
            run.step([("assistant", "thinking")])
        seq = getattr(run, name)(*args, **kwargs)
        event = journal.read(KEY, seq)[0].event.to_dict()
        for field, value in expected.items():
            assert event[field] == value, (name, field, event)
        assert journal.read(KEY, seq)[0].seq == seq
    state = journal.state(KEY)
    assert state.died.reason == "oom"
    assert [m.content for m in state.transcript[:3]] == ["hi", "hello", "ok"]


def test_phase_completed_and_compaction_done_and_handoff_answers(journal):
    run = journal.begin(KEY)
    run.phase_started(0, "investigate")
    run.phase_completed(0, "investigate", "off by one")
    run.compaction_started("scraped", id="c1")
    run.compaction_done("scraped", id="c1", summary="short", messages=3, tokens=100)
    run.handoff_sent("h1", "orchestrator-0", "worker-1", content_hash="ab12")
    run.handoff_acked("h1", "worker-1")
    run.handoff_sent("h2", "orchestrator-0", "worker-1", content_hash="cd34")
    run.handoff_rejected("h2", "worker-1", "busy")
    state = journal.state(KEY)
    assert state.completed_phase_indices() == [0]
    assert state.phases.completed[0].output == "off by one"
    assert state.compaction.count == 1
    assert [(h.id, h.status) for h in state.handoffs] == [("h1", "acknowledged"), ("h2", "rejected")]


def test_typed_append_the_fold_would_ignore_is_refused(journal):
    run = journal.begin(KEY)
    with pytest.raises(runjournal.RefusedError) as caught:
        run.handoff_acked("nope", "worker-1")
    assert caught.value.code == "refused"
    assert caught.value.run == tuple(KEY)
    assert caught.value.seq == 1
    assert run.next_seq == 1


def test_state_to_dict_equals_the_json(journal):
    run = journal.begin(KEY, {"model": "m1"})
    run.step([("user", "hi")])
    state = journal.state(KEY)
    assert state.to_dict() == json.loads(journal._native.state(tuple(KEY)))
    assert state.run == KEY
    assert state.status == "running"
    assert state.meta.model == "m1"
    assert state.transcript[0].role == "user"
    assert run.state() == state


def test_reads_history_state_at_verify_runs(journal):
    run = journal.begin(KEY)
    run.step([("user", "a")])
    run.step([("user", "b")])
    assert [e.event.type for e in journal.history(KEY)] == ["run_started", "step", "step"]
    assert len(journal.state_at(KEY, 1).transcript) == 1
    report = journal.verify(KEY)
    assert report.events == 3 and report.run == KEY and len(report.head) == 64
    records = journal.runs(goal=KEY.goal)
    assert [r.run for r in records] == [KEY] and records[0].next_seq == 3
    with pytest.raises(runjournal.InvalidError) as caught:
        journal.state_at(KEY, 9)
    assert caught.value.code == "seq_out_of_range" and caught.value.seq == 9


def test_fencing_is_an_exception(journal):
    old = journal.begin(KEY)
    new, state = journal.resume(KEY)
    assert new.epoch == 1 and state.epoch == 1
    with pytest.raises(runjournal.FencedError) as caught:
        old.step([("user", "late")])
    assert caught.value.code == "fenced"
    assert caught.value.run == tuple(KEY)
    # The seq the old handle would have written.
    assert caught.value.seq == 1
    assert isinstance(caught.value, runjournal.Error)


def test_conflict_is_an_exception_and_writes_nothing(journal):
    run = journal.begin(KEY)
    with pytest.raises(runjournal.ConflictError) as caught:
        run.append([{"type": "turn_completed"}], expected_seq=5)
    assert caught.value.code == "conflict" and caught.value.seq == 1
    assert run.append([{"type": "step", "messages": []}], expected_seq=1) == 1
    assert journal.verify(KEY).events == 2


def test_not_found_finished_mismatch_already_exists(journal):
    with pytest.raises(runjournal.NotFoundError) as caught:
        journal.resume(KEY)
    assert caught.value.code == "not_found" and caught.value.run == tuple(KEY)
    run = journal.begin(KEY, {"model": "m1"})
    with pytest.raises(runjournal.AlreadyExistsError):
        journal.begin(KEY)
    with pytest.raises(runjournal.MismatchError) as caught:
        journal.resume(KEY, model="m2")
    assert caught.value.code == "mismatch"
    run.finish("done")
    with pytest.raises(runjournal.FinishedError) as caught:
        journal.resume(KEY)
    assert caught.value.code == "finished"


def test_out_of_order_after_finish(journal):
    run = journal.begin(KEY)
    run.finish()
    with pytest.raises(runjournal.OutOfOrderError) as caught:
        run.step([("user", "late")])
    assert caught.value.code == "out_of_order"


def test_resume_latest_and_next_episode(journal):
    assert journal.next_episode(KEY.goal) == 0
    journal.begin(KEY).finish()
    second = RunKey(KEY.goal, 1, KEY.agent)
    journal.begin(second).step([("user", "x")])
    assert journal.next_episode(KEY.goal) == 2
    assert journal.latest_episode(KEY.goal, KEY.agent) == 1
    run, state = journal.resume_latest(KEY.goal, KEY.agent)
    assert run.key == second and len(state.transcript) == 1


# The scoped form's exits.


def test_scoped_normal_exit_records_run_completed(journal):
    with journal.run(KEY, {"model": "m1"}) as run:
        run.step([("user", "hi")])
        run.output = "done"
    state = journal.state(KEY)
    assert state.status == "completed" and state.output == "done"


def test_scoped_exception_records_run_failed_with_type_and_message(journal):
    with pytest.raises(ValueError):
        with journal.run(KEY) as run:
            run.step([("user", "hi")])
            raise ValueError("bad input")
    state = journal.state(KEY)
    assert state.status == "failed"
    assert state.failure.error.kind == "ValueError"
    assert state.failure.error.message == "bad input"


@pytest.mark.parametrize("exit", [KeyboardInterrupt, SystemExit])
def test_scoped_keyboard_interrupt_and_system_exit_record_run_interrupted(journal, exit):
    with pytest.raises(exit):
        with journal.run(KEY) as run:
            run.phase_started(0, "p")
            raise exit()
    state = journal.state(KEY)
    assert state.status == "interrupted" and state.recoverable
    # An interrupted run resumes in the next scoped call, where it stopped.
    with journal.run(KEY) as run:
        assert run.resume_state.phases.active.index == 0
    assert journal.state(KEY).status == "completed"


def test_scoped_finished_run_raises_and_body_never_runs(journal):
    with journal.run(KEY):
        pass
    ran = []
    with pytest.raises(runjournal.FinishedError):
        with journal.run(KEY):
            ran.append(True)
    assert ran == []
    assert journal.verify(KEY).events == 2


# Lineage and subscriptions.


def test_fork_rewind_diff(journal):
    run = journal.begin(KEY)
    run.step([("user", "a")])
    run.step([("user", "b")])
    child_key = RunKey(KEY.goal, 7, KEY.agent)
    child = journal.fork(KEY, 1, child_key)
    child.step([("user", "c")])
    assert journal.parent(child_key) == KEY
    assert [m.content for m in journal.state(child_key).transcript] == ["a", "c"]
    diff = journal.diff(KEY, child_key)
    assert diff.common == 2
    rewound = journal.rewind(KEY, 1)
    assert journal.state(KEY).status == "superseded"
    assert [m.content for m in rewound.state().transcript] == ["a"]
    children = journal.fanout(child_key, 1, 3)
    assert [c.key.episode for c in children] == [9, 10, 11]


def test_subscription_iterates_history_then_live_events(journal):
    run = journal.begin(KEY)
    run.step([("user", "a")])
    subscription = journal.subscribe(KEY)
    seen = []

    def consume():
        for envelope in subscription:
            seen.append(envelope.seq)
            if envelope.seq == 3:
                return

    consumer = threading.Thread(target=consume)
    consumer.start()
    run.step([("user", "b")])
    run.step([("user", "c")])
    consumer.join(timeout=10)
    assert not consumer.is_alive()
    assert seen == [0, 1, 2, 3]
    assert subscription.recv(timeout=0.05) is None


def test_closed_journal_raises_closed_error(tmp_path):
    journal = runjournal.Journal.open(tmp_path / "db")
    journal.close()
    with pytest.raises(runjournal.ClosedError) as caught:
        journal.begin(KEY)
    assert caught.value.code == "closed"


def test_invalid_durability_and_meta_are_invalid_errors(tmp_path, journal):
    with pytest.raises(runjournal.InvalidError):
        runjournal.Journal.open(tmp_path / "other", durability="sometimes")
    with pytest.raises(runjournal.InvalidError) as caught:
        journal.begin(KEY, {"no_such_field": 1})
    assert caught.value.code == "invalid_json"
