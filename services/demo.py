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
from services.simulate import run_simulation
from shared.logs import configure_logging
from shared.settings import CommonSettings

READY_TIMEOUT_S = 90.0


def run_demo(*, rate: float) -> int:
    """Start the services, feed them until Ctrl-C or SIGTERM, then stop them in order.

    Returns 0 after a clean run, 1 when a service failed to start or died on the way.
    """
    settings = CommonSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="demo")
    ports = {name: SERVICES[name].settings().http_port or 8000 for name in SERVICES}
    # SIGTERM (from a supervisor or `timeout`) stops the demo the way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    children = {name: _spawn(name) for name in SERVICES}
    ok = False
    try:
        ok = _wait_until_healthy(children, ports)
        if ok:
            _announce(ports)
            ok = asyncio.run(_feed(settings.kafka_bootstrap_servers, rate, children))
    except KeyboardInterrupt:
        pass
    finally:
        _stop(children)
    return 0 if ok else 1


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


async def _feed(bootstrap: str, rate: float, children: dict[str, subprocess.Popen[bytes]]) -> bool:
    """Run the shop until interrupted; False as soon as a service dies."""
    shop = asyncio.create_task(run_simulation(bootstrap, customers=50, rate=rate, duration=0))
    while not shop.done():
        dead = [name for name, child in children.items() if child.poll() is not None]
        if dead:
            print(f"service(s) stopped unexpectedly: {', '.join(dead)}", file=sys.stderr)
            shop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await shop
            return False
        await asyncio.wait({shop}, timeout=1.0)
    shop.result()
    return True


def _announce(ports: dict[str, int]) -> None:
    print(
        "\nAll three services are up:",
        *(
            f"  {name:8} http://127.0.0.1:{port}/healthz  /readyz  /metrics  /docs/asyncapi"
            for name, port in ports.items()
        ),
        "The simulated shop starts now; Ctrl-C stops everything.\n",
        sep="\n",
        flush=True,
    )


def _spawn(name: str) -> subprocess.Popen[bytes]:
    # Each service in its own process group, so the terminal's Ctrl-C reaches only the demo,
    # which then stops the services in order with SIGTERM (they drain and commit).
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", name],
        env=os.environ.copy(),
        start_new_session=True,
    )


def _wait_until_healthy(
    children: dict[str, subprocess.Popen[bytes]], ports: dict[str, int]
) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = set(children)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            if children[name].poll() is not None:
                print(f"{name} exited with code {children[name].returncode}", file=sys.stderr)
                return False
            with contextlib.suppress(httpx.HTTPError):
                if (
                    httpx.get(f"http://127.0.0.1:{ports[name]}/readyz", timeout=1).status_code
                    == 200
                ):
                    pending.discard(name)
        time.sleep(0.5)
    if pending:
        print(
            f"not ready after {READY_TIMEOUT_S:.0f}s: {', '.join(sorted(pending))}", file=sys.stderr
        )
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
