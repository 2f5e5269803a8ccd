"""`loyalty demo`: the three services as processes plus the simulated shop, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time

import httpx

from services.registry import SERVICES
from shared.logs import configure_logging
from shared.settings import CommonSettings

READY_TIMEOUT_S = 90.0


def run_demo(*, rate: float) -> int:
    settings = CommonSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="demo")
    children = {name: _spawn(name) for name in SERVICES}
    try:
        ports = {name: SERVICES[name].settings().http_port or 8000 for name in SERVICES}
        if not _wait_until_healthy(children, ports):
            return 1
        print(
            "\nAll three services are up:",
            *(f"  {n:8} http://127.0.0.1:{p}/healthz  /readyz  /metrics  /docs/asyncapi"
              for n, p in ports.items()),
            "The simulated shop starts now; Ctrl-C stops everything.\n",
            sep="\n",
            flush=True,
        )
        from services.simulate import run_simulation

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                run_simulation(settings.kafka_bootstrap_servers, customers=50, rate=rate, duration=0)
            )
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        _stop(children)


def _spawn(name: str) -> subprocess.Popen[bytes]:
    # Each service in its own process group, so the terminal's Ctrl-C reaches only the demo,
    # which then stops the services in order with SIGTERM (they drain and commit).
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", name],
        env=os.environ.copy(),
        start_new_session=True,
    )


def _wait_until_healthy(children: dict[str, subprocess.Popen[bytes]], ports: dict[str, int]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = set(children)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            if children[name].poll() is not None:
                print(f"{name} exited with code {children[name].returncode}", file=sys.stderr)
                return False
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{ports[name]}/readyz", timeout=1).status_code == 200:
                    pending.discard(name)
        time.sleep(0.5)
    if pending:
        print(f"not ready after {READY_TIMEOUT_S:.0f}s: {', '.join(sorted(pending))}", file=sys.stderr)
    return not pending


def _stop(children: dict[str, subprocess.Popen[bytes]]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for name, child in children.items():
        try:
            child.wait(timeout=45)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in 45s; killing it", file=sys.stderr)
            child.kill()
