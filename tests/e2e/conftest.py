"""Services as separate processes, started the way an operator starts them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self

import pytest
from infrastructure import Endpoints
from support import start_service_groups_at_end, unique

from services import processes
from services.registry import SERVICES
from shared.settings import CommonSettings

LOGS = Path(".local/test-logs")


class ServiceProcess(processes.ServiceProcess):
    """`loyalty run <service>` in a child process, its log kept under .local/test-logs."""

    def __init__(self, service: str, port: int | None = None, *extra_env: tuple[str, str]) -> None:
        super().__init__(
            service, port=port, env={"LOYALTY_LOG_FORMAT": "json", **dict(extra_env)}, log_dir=LOGS
        )


@pytest.fixture
def spawn(infrastructure: Endpoints) -> Iterator[type[ServiceProcess]]:
    """Start services in consumer groups of the test's own, positioned at the topics' ends."""
    started: list[ServiceProcess] = []
    prefix = unique("e2e")
    positioned: set[str] = set()

    class Tracked(ServiceProcess):
        def __init__(self, service: str, port: int | None = None, *env: tuple[str, str]) -> None:
            super().__init__(service, port, ("LOYALTY_CONSUMER_GROUP_PREFIX", prefix), *env)

        def start(self, ready_timeout: float = 60.0) -> Self:
            if self.service not in positioned:
                entry = SERVICES[self.service]
                topics = list(entry.definition(entry.settings()).handlers)
                # start() is called from sync and async tests alike: position in a thread.
                with ThreadPoolExecutor(1) as pool:
                    pool.submit(
                        asyncio.run,
                        start_service_groups_at_end(
                            infrastructure.kafka_bootstrap,
                            CommonSettings(consumer_group_prefix=prefix),
                            self.service,
                            topics,
                        ),
                    ).result()
                positioned.add(self.service)
            started.append(self)
            return super().start(ready_timeout)

    yield Tracked
    for service in started:
        service.kill()
