"""Markers by directory, and the real infrastructure that integration and e2e tests share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from infrastructure import Endpoints, provide_infrastructure

_LEVELS = ("unit", "integration", "e2e")

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


@pytest.fixture(scope="session")
def infrastructure() -> Iterator[Endpoints]:
    """Kafka and PostgreSQL: from the environment, testcontainers, or the local scripts."""
    with provide_infrastructure() as endpoints:
        # Subprocesses started by e2e tests (the services) find the same infrastructure.
        os.environ["LOYALTY_KAFKA_BOOTSTRAP_SERVERS"] = endpoints.kafka_bootstrap
        os.environ["LOYALTY_DATABASE_URL"] = endpoints.database_url
        yield endpoints
