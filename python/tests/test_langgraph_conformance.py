"""langgraph-checkpoint-conformance against RunjournalSaver and AsyncRunjournalSaver:
every base capability and every extended capability they implement passes."""

import tempfile

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import BASE_CAPABILITIES, EXTENDED_CAPABILITIES
from langgraph.checkpoint.conformance.report import ProgressCallbacks

import runjournal
from runjournal.langgraph import AsyncRunjournalSaver, RunjournalSaver


def _registered(name, make):
    @checkpointer_test(name=name)
    async def factory():
        with tempfile.TemporaryDirectory() as directory:
            journal = runjournal.Journal.open(f"{directory}/journal.db", durability="buffered")
            yield make(journal)
            journal.close()

    return factory


@pytest.mark.parametrize(
    "name,make",
    [
        ("RunjournalSaver", RunjournalSaver),
        ("AsyncRunjournalSaver", lambda journal: AsyncRunjournalSaver(runjournal.AsyncJournal(journal))),
    ],
)
async def test_conformance_every_capability_passes(name, make):
    report = await validate(_registered(name, make), progress=ProgressCallbacks.quiet())
    report.print_report()
    results = report.to_dict()
    for capability in BASE_CAPABILITIES | EXTENDED_CAPABILITIES:
        result = report.results[capability.value]
        assert result.detected, f"{name}: {capability.value} is not implemented"
        assert result.passed, f"{name}: {capability.value} failed: {result.failures}"
    assert report.passed_all_base(), results
    assert report.passed_all(), results


async def test_conformance_over_a_connected_journal():
    """The saver built from a connected journal (another process's, here this
    one serving itself) passes the same suite."""

    @checkpointer_test(name="RunjournalSaver (connected)")
    async def factory():
        with tempfile.TemporaryDirectory() as directory:
            owner = runjournal.Journal.open(f"{directory}/journal.db", durability="buffered")
            owner.serve()
            client = runjournal.Journal.connect(f"{directory}/journal.db")
            assert client.connected
            yield RunjournalSaver(client)
            client.close()
            owner.close()

    report = await validate(factory, progress=ProgressCallbacks.quiet())
    report.print_report()
    assert report.passed_all(), report.to_dict()
