"""The examples run for real: the LangGraph one is killed with SIGKILL
mid-run and resumed from runjournal in a new process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(*args, timeout=120):
    result = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _progress(path):
    try:
        return int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX only")
def test_langgraph_graph_killed_mid_run_resumes_in_a_new_process(tmp_path):
    db = tmp_path / "lg.db"
    progress = Path(str(db) + ".progress")
    steps = 40
    script = EXAMPLES / "langgraph_kill_resume.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--db", str(db), "--steps", str(steps), "--delay", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while _progress(progress) < 8:  # poll until the graph is well into its run
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline, "the graph made no progress"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    killed_at = _progress(progress)
    assert 8 <= killed_at < steps

    resumed = _run(script, "--db", db, "--steps", steps, "--delay", "0", "--resume")
    # It continued from the last checkpoint (the step running at the kill, or
    # the one before it, runs again), not from the start.
    assert killed_at - 2 <= resumed["started_at"] <= killed_at
    assert resumed["step"] == steps
    # Every step exactly once, in order, across both processes.
    assert resumed["messages"] == ["start"] + [f"step {i}" for i in range(1, steps + 1)]


def test_best_of_n_runs_one_episode_per_attempt(tmp_path):
    out = _run(EXAMPLES / "best_of_n.py", "--db", tmp_path / "best.db", "--attempts", "5")
    assert [a["episode"] for a in out["attempts"]] == [0, 1, 2, 3, 4]
    assert {a["status"] for a in out["attempts"]} <= {"completed", "failed"}
    completed = [a for a in out["attempts"] if a["status"] == "completed"]
    assert out["best"] == max(completed, key=lambda a: a["score"])


def test_agents_session_example_keeps_an_auditable_history(tmp_path):
    out = _run(EXAMPLES / "agents_session.py", "--db", tmp_path / "session.db")
    assert out["items"] == 4
    assert out["audit"][-2:] == ["agents.pop", "agents.items"]
