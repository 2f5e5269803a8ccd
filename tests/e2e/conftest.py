"""Services as separate processes, started the way an operator starts them."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from support import start_group_at_end, unique

from services.registry import SERVICES
from shared.infrastructure import Endpoints

LOGS = Path(".local/test-logs")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """`loyalty run <service>` in a child process, with its log kept in a file."""

    def __init__(self, service: str, port: int | None = None, *extra_env: tuple[str, str]) -> None:
        self.service = service
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, "LOYALTY_LOG_FORMAT": "json", **dict(extra_env)}
        self.process: subprocess.Popen[bytes] | None = None
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{service}-{port}.log"

    def start(self, ready_timeout: float = 60.0) -> ServiceProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    "run",
                    self.service,
                    "--port",
                    str(self.port),
                ],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.service} exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.service} not ready: {self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM and wait: the exit code of a clean shutdown is 0."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def spawn(infrastructure: Endpoints) -> Iterator[type[ServiceProcess]]:
    """Start services in consumer groups of the test's own, positioned at the topics' ends."""
    started: list[ServiceProcess] = []
    prefix = unique("e2e")
    positioned: set[str] = set()

    class Tracked(ServiceProcess):
        def __init__(self, service: str, port: int | None = None, *env: tuple[str, str]) -> None:
            super().__init__(service, port, ("LOYALTY_CONSUMER_GROUP_PREFIX", prefix), *env)

        def start(self, ready_timeout: float = 60.0) -> ServiceProcess:
            if self.service not in positioned:
                entry = SERVICES[self.service]
                topics = list(entry.definition(entry.settings()).handlers)
                group = f"{prefix}-{self.service}"
                # start() is called from sync and async tests alike: position in a thread.
                with ThreadPoolExecutor(1) as pool:
                    pool.submit(
                        asyncio.run,
                        start_group_at_end(infrastructure.kafka_bootstrap, group, topics),
                    ).result()
                positioned.add(self.service)
            started.append(self)
            return super().start(ready_timeout)

    yield Tracked
    for service in started:
        if service.process is not None and service.process.poll() is None:
            service.process.kill()
            service.process.wait(timeout=10)
