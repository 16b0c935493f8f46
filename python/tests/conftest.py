"""Shared fixtures: a fresh journal in a temporary directory per test."""

import pytest

import runjournal


@pytest.fixture
def journal(tmp_path):
    journal = runjournal.Journal.open(tmp_path / "journal.db")
    yield journal
    journal.close()


@pytest.fixture
def buffered(tmp_path):
    journal = runjournal.Journal.open(tmp_path / "buffered.db", durability="buffered")
    yield journal
    journal.close()
