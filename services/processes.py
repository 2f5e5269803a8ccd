"""Services as child processes (`loyalty run <service>`): for the demo, benchmarks and tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import httpx

from shared.errors import LoyaltyError


class ServiceDidNotStart(LoyaltyError):
    """A service process exited, or did not become ready in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """One service in a child process; its output goes to `log_path`, or to ours when None."""

    def __init__(
        self,
        service: str,
        *,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        own_session: bool = False,
        checkout: Path | None = None,
    ) -> None:
        self.service = service
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **(env or {})}
        self.log_path = log_dir / f"{service}-{self.port}.log" if log_dir else None
        # A session of its own keeps the terminal's Ctrl-C away from the child: the parent
        # then stops it in order with SIGTERM.
        self._own_session = own_session
        # Another checkout's code (an earlier release, for a benchmark's baseline): run with
        # that checkout's own environment (`<checkout>/.venv`), from its directory.
        self._checkout = checkout
        if checkout is not None:
            self._env["PYTHONPATH"] = str(checkout)
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> Self:
        """Start the process without waiting for it to be ready."""
        python = sys.executable if self._checkout is None else self._checkout / ".venv/bin/python"
        command = [
            str(python),
            "-m",
            "services.cli",
            "run",
            self.service,
            "--port",
            str(self.port),
        ]
        if self.log_path is None:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command, env=self._env, start_new_session=self._own_session, cwd=self._checkout
            )
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                command,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self._own_session,
                cwd=self._checkout,
            )
        return self

    def ready(self) -> bool:
        """True once /readyz answers 200; raises if the process has exited."""
        if self.process is None or self.process.poll() is not None:
            code = self.process.returncode if self.process else None
            raise ServiceDidNotStart(f"{self.service} exited with code {code}{self._log_tail()}")
        try:
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, ready_timeout: float = 60.0) -> Self:
        """Launch and wait until ready."""
        self.launch()
        deadline = time.monotonic() + ready_timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise ServiceDidNotStart(
                    f"{self.service} not ready in {ready_timeout}s{self._log_tail()}"
                )
            time.sleep(0.2)
        return self

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; a clean shutdown exits 0. Killed if it does not stop in time."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def peak_rss_mb(self) -> float:
        """The process's peak resident memory (VmHWM) so far, in MB."""
        if self.process is None:
            return 0.0
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        """CPU time (user and system) the process has used so far, in seconds."""
        if self.process is None:
            return 0.0
        # /proc/<pid>/stat: the fields after the command name; utime and stime are 14th and 15th.
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _log_tail(self) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return ":\n" + self.log_path.read_text(errors="replace")[-3000:]
