"""A good native library: the GIL is released (threads share syncs), asyncio
never blocks the loop, a forked child gets a clear error."""

import asyncio
import os
import threading

import pytest

import runjournal
from runjournal import RunKey

APPENDS_PER_THREAD = 40
THREADS = 8


def test_eight_threads_of_durable_appends_share_syncs(journal):
    assert journal.durability == "durable"
    runs = [journal.begin(RunKey("group-commit", i, "agent")) for i in range(THREADS)]
    barrier = threading.Barrier(THREADS)
    errors = []

    def work(run):
        try:
            barrier.wait()
            for i in range(APPENDS_PER_THREAD):
                run.step([("assistant", f"step {i}")])
        except Exception as error:  # reported below, with the thread's run
            errors.append((run.key, error))

    before = journal.metrics()
    threads = [threading.Thread(target=work, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = journal.metrics()
    assert errors == []
    appends = after["batches"] - before["batches"]
    syncs = after["flushes"] - before["flushes"]
    assert appends == THREADS * APPENDS_PER_THREAD
    # Each durable append returned only once synced; with the GIL released
    # while they wait, appends from different threads share one sync.
    assert 0 < syncs < appends, (syncs, appends)
    for run in runs:
        assert journal.verify(run.key).events == APPENDS_PER_THREAD + 1


async def test_asyncio_appends_keep_the_loop_responsive(tmp_path):
    journal = await runjournal.AsyncJournal.open(tmp_path / "db")
    run = await journal.begin(RunKey("async", 0, "agent"))
    ticks = 0
    stop = asyncio.Event()

    async def ticker():
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    ticking = asyncio.create_task(ticker())
    seqs = []
    for i in range(30):
        before = ticks
        seqs.append(await run.step([("assistant", f"step {i}")]))
        # The loop ran the ticker while the durable append waited for its sync.
        assert ticks > before
    stop.set()
    await ticking
    assert seqs == list(range(1, 31))
    state = await journal.state(run.key)
    assert len(state.transcript) == 30
    assert (await journal.verify(run.key)).events == 31
    async with journal.run(RunKey("async", 1, "agent")) as scoped:
        await scoped.step([("user", "hi")])
    assert (await journal.state(RunKey("async", 1, "agent"))).status == "completed"
    await journal.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_journal_used_in_a_forked_child_raises_forked_process_error(journal):
    run = journal.begin(RunKey("fork-safety", 0, "agent"))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report what using the journal does, then leave at once
        os.close(read_end)
        outcome = b"no error"
        try:
            run.step([("user", "from the child")])
        except runjournal.ForkedProcessError as error:
            outcome = b"run:" + error.code.encode()
        try:
            journal.state(run.key)
        except runjournal.ForkedProcessError as error:
            outcome += b",journal:" + error.code.encode()
        os.write(write_end, outcome)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as reader:
        outcome = reader.read()
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert outcome == b"run:forked,journal:forked"
    # The parent's journal is untouched and still works.
    run.step([("user", "from the parent")])
    assert journal.verify(run.key).events == 2


FORK_EXIT_SCRIPT = r"""
import os, sys
import runjournal
journal = runjournal.Journal.open(sys.argv[1])
run = journal.begin(("fork-exit", 0, "agent"))
pid = os.fork()
if pid == 0:
    try:
        run.step([("user", "child")])
    except runjournal.ForkedProcessError:
        pass
    del run, journal
    sys.exit(3)  # a normal interpreter exit: the handles are dropped in the child
_, status = os.waitpid(pid, 0)
run.step([("user", "parent")])
print(os.WEXITSTATUS(status), journal.verify(("fork-exit", 0, "agent")).events)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_forked_child_exiting_normally_does_not_hang(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", FORK_EXIT_SCRIPT, str(tmp_path / "db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "2"]
