"""Run a service of the engine as a separate process for the benchmark, and watch its memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

LOGS = Path(__file__).resolve().parent.parent / ".local" / "bench-logs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """`loyalty run <service>` with the benchmark's broker, database and consumer groups."""

    def __init__(self, service: str, env: dict[str, str]) -> None:
        self.service = service
        self.port = free_port()
        self._env = {
            **os.environ,
            **env,
            "LOYALTY_LOG_FORMAT": "json",
            "LOYALTY_LOG_LEVEL": "warning",
        }
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{service}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> ServiceProcess:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.service} exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.service} not ready in {timeout}s")

    def peak_rss_mb(self) -> float:
        """The process's peak resident memory (VmHWM), in MB."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
