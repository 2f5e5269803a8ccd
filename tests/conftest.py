"""Markers by directory, and the real infrastructure that integration and e2e tests share."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from infrastructure import Endpoints, provide_infrastructure, redact_url
from session_database import FRESH_DATABASE_ENV, fresh_database_wanted, session_database

_LEVELS = ("unit", "integration", "e2e")
# What the end of the run should tell whoever reads it (the logs of set-up are captured).
_NOTES: list[str] = []

# The broker and the database share this machine's cores with the tests: a property test's
# example may take longer than hypothesis' 200 ms deadline without anything being wrong.
settings.register_profile("loyalty", deadline=None)
settings.load_profile("loyalty")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.path)).parts
        for level in _LEVELS:
            if level in parts:
                item.add_marker(getattr(pytest.mark, level))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for note in _NOTES:
        terminalreporter.write_line(note, yellow=True)


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Endpoints]:
    """Kafka and PostgreSQL: from the environment, testcontainers, or the local scripts; on
    that server, a database of this session's own, dropped at its end."""
    with (
        provide_infrastructure() as found,
        session_database(found.database_url, os.environ) as database_url,
    ):
        if database_url == found.database_url and fresh_database_wanted(os.environ):
            _NOTES.append(
                f"warning: the tests used {redact_url(database_url)} itself, as its role may "
                f"not create databases, so rows of earlier runs may meet this run's: grant it "
                f"CREATEDB, or set {FRESH_DATABASE_ENV}=0 to use the given database on purpose"
            )
        endpoints = dataclasses.replace(found, database_url=database_url)
        # Subprocesses started by e2e tests (the services) find the same infrastructure.
        os.environ["LOYALTY_KAFKA_BOOTSTRAP_SERVERS"] = endpoints.kafka_bootstrap
        os.environ["LOYALTY_DATABASE_URL"] = endpoints.database_url
        yield endpoints
