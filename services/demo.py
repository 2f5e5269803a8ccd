"""`loyalty demo`: every service as a process plus the simulated shop, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time

from services.processes import ServiceDidNotStart, ServiceProcess
from services.registry import SERVICES
from services.simulate import run_simulation
from shared.logs import configure_logging
from shared.settings import CommonSettings

READY_TIMEOUT_S = 90.0


def run_demo(*, rate: float, base_port: int | None = None) -> int:
    """Start the services, feed them until Ctrl-C or SIGTERM, then stop them in order.

    Returns 0 after a clean run, 1 when a service failed to start or died on the way.
    """
    settings = CommonSettings()
    configure_logging(fmt=settings.log_format, level=settings.log_level, service="demo")
    # SIGTERM (from a supervisor or `timeout`) stops the demo the way Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    # notify signs unsubscribe links; a demo without a configured secret gets a throwaway one.
    os.environ.setdefault("LOYALTY_UNSUBSCRIBE_SECRET", secrets.token_urlsafe(32))
    # ...and messages only the simulated customers ("sim-..."), whoever else uses the database.
    os.environ.setdefault("LOYALTY_WORKER_SCOPE", "sim-")
    children = {
        name: ServiceProcess(
            name,
            port=base_port + n if base_port else entry.settings().http_port,
            own_session=True,
        ).launch()
        for n, (name, entry) in enumerate(SERVICES.items())
    }
    failed = False  # a Ctrl-C, even during start-up, is a clean stop; a dead service is not
    try:
        if _wait_until_ready(children):
            _announce(children)
            failed = not asyncio.run(_feed(settings.kafka_bootstrap_servers, rate, children))
        else:
            failed = True
    except KeyboardInterrupt:
        pass
    finally:
        for child in children.values():
            child.stop(timeout=45)
    return 1 if failed else 0


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


async def _feed(bootstrap: str, rate: float, children: dict[str, ServiceProcess]) -> bool:
    """Run the shop until Ctrl-C or SIGTERM; False as soon as a service dies."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Inside the loop a signal only stops the shop: a KeyboardInterrupt here would make
    # asyncio.run cancel the Kafka clients' own tasks before the shop could close them.
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    shop = asyncio.create_task(run_simulation(bootstrap, customers=50, rate=rate, duration=0))
    healthy = True
    while not shop.done() and not stop.is_set():
        dead = [name for name, child in children.items() if not child.running()]
        if dead:
            print(f"service(s) stopped unexpectedly: {', '.join(dead)}", file=sys.stderr)
            healthy = False
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
    shop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await shop
    return healthy


def _announce(children: dict[str, ServiceProcess]) -> None:
    print(
        "\nAll services are up:",
        *(
            f"  {name:8} {child.url}/healthz  /readyz  /metrics  /docs/asyncapi"
            for name, child in children.items()
        ),
        "The simulated shop starts now; Ctrl-C stops everything.\n",
        sep="\n",
        flush=True,
    )


def _wait_until_ready(children: dict[str, ServiceProcess]) -> bool:
    deadline = time.monotonic() + READY_TIMEOUT_S
    pending = set(children)
    try:
        while pending and time.monotonic() < deadline:
            pending -= {name for name in pending if children[name].ready()}
            time.sleep(0.5)
    except ServiceDidNotStart as exc:
        print(exc, file=sys.stderr)
        return False
    if pending:
        print(
            f"not ready after {READY_TIMEOUT_S:.0f}s: {', '.join(sorted(pending))}", file=sys.stderr
        )
    return not pending
