"""`Journal.connect`: many processes share one database through its owner."""

import subprocess
import sys

import pytest

import runjournal
from runjournal import RunKey

WORKER = r"""
import sys
import runjournal
journal = runjournal.Journal.connect(sys.argv[1])
assert journal.connected
worker = int(sys.argv[2])
run = journal.begin(("connect", worker, "worker"), {"caller": "test"})
for i in range(int(sys.argv[3])):
    run.step([("assistant", f"worker {worker} step {i}")])
run.finish(f"worker {worker} done")
try:
    run.step([("assistant", "after finish")])
except runjournal.OutOfOrderError as error:
    print(error.code, error.run[1])
"""


def test_connect_from_four_processes_to_one_database(tmp_path):
    path = tmp_path / "shared.db"
    owner = runjournal.Journal.open(path)
    socket = owner.serve()
    assert socket.endswith("runjournal.sock")
    steps = 25
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(path), str(worker), str(steps)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(4)
    ]
    for worker, process in enumerate(workers):
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        # Errors come back typed through the served API too.
        assert out.split() == ["out_of_order", str(worker)]
    for worker in range(4):
        key = RunKey("connect", worker, "worker")
        state = owner.state(key)
        assert state.status == "completed" and state.output == f"worker {worker} done"
        assert len(state.transcript) == steps
        assert owner.verify(key).events == steps + 2
    owner.close()


def test_connected_handle_reads_and_raises_typed_errors(tmp_path):
    path = tmp_path / "shared.db"
    owner = runjournal.Journal.open(path)
    owner.serve()
    client = runjournal.Journal.connect(path)
    run = client.begin(RunKey("remote", 0, "agent"))
    run.step([("user", "hi")])
    assert owner.state(RunKey("remote", 0, "agent")).transcript[0].content == "hi"
    assert client.state(RunKey("remote", 0, "agent")).to_dict() == owner.state(RunKey("remote", 0, "agent")).to_dict()
    with pytest.raises(runjournal.NotFoundError) as caught:
        client.resume(RunKey("remote", 9, "agent"))
    assert caught.value.run == ("remote", 9, "agent")
    with pytest.raises(runjournal.ConflictError):
        run.append([{"type": "turn_completed"}], expected_seq=7)
    client.close()
    owner.close()


def test_connect_without_a_server_is_a_remote_error(tmp_path):
    runjournal.Journal.open(tmp_path / "db").close()
    with pytest.raises(runjournal.RemoteError) as caught:
        runjournal.Journal.connect(tmp_path / "db")
    assert caught.value.code == "unreachable"
