"""The run command: every service and the simulated shop, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from infrastructure import Endpoints


def free_base_port() -> int:
    """Five consecutive free ports (one per service), so the test never meets another run's
    services."""
    for _ in range(50):
        base = random.randrange(20_000, 40_000)
        with contextlib.ExitStack() as stack:
            try:
                for offset in range(5):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base
    raise AssertionError("no five consecutive free ports")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def emails(maildir: Path) -> list[Path]:
    """The messages delivered to a Maildir so far."""
    new = maildir / "new"
    return sorted(new.iterdir()) if new.is_dir() else []


CONSUMED = re.compile(
    r'loyalty_messages_consumed_total\{outcome="processed",service="(\w+)",topic="([\w.]+)"\} (\d+)'
)


def consumed(port: int) -> dict[str, int]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    return {m.group(2): int(float(m.group(3))) for m in CONSUMED.finditer(text)}


def test_demo_runs_every_service_healthy_fed_by_the_shop_and_stops_on_ctrl_c(
    infrastructure: Endpoints, tmp_path: Path
) -> None:
    base = free_base_port()
    ports = {
        "earn": base,
        "tiering": base + 1,
        "notify": base + 2,
        "analytics": base + 3,
        "shops": base + 4,
    }
    # notify's SMTP address, where nothing answers: the demo keeps the emails there itself.
    mail = tmp_path / "mail"
    env = {
        **os.environ,
        "LOYALTY_LOG_FORMAT": "console",
        "LOYALTY_SMTP_HOST": "127.0.0.1",
        "LOYALTY_SMTP_PORT": str(free_port()),
        "LOYALTY_DEMO_MAIL_DIR": str(mail),
    }
    # A file, not a pipe: the services inherit it and must never block on a full pipe.
    log_path = tmp_path / "demo.log"
    log = log_path.open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "demo", "--rate", "40", "--base-port", str(base)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        seen: dict[str, dict[str, int]] = {}
        while time.monotonic() < deadline:
            assert demo.poll() is None, log_path.read_text()[-3000:]
            try:
                seen = {name: consumed(port) for name, port in ports.items()}
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            # Fed by the shop: the demo announced itself and the shop saw points come back.
            output = log_path.read_text()
            if (
                "All services are up" in output
                and "points_seen" in output
                and seen["earn"].get("shop.orders", 0) > 0
                and seen["notify"].get("shop.customers", 0) > 0
                and seen["analytics"].get("shop.orders", 0) > 0
                and emails(mail)
            ):
                break
            time.sleep(0.5)
        health = {
            n: httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=2).status_code
            for n, p in ports.items()
        }
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=90)
        log.close()
        output = log_path.read_text()

    assert health == {"earn": 200, "tiering": 200, "notify": 200, "analytics": 200, "shops": 200}
    assert seen["earn"]["shop.orders"] > 0
    assert seen["tiering"]["shop.orders"] > 0
    assert seen["notify"]["shop.customers"] > 0
    assert seen["analytics"]["shop.orders"] > 0
    assert demo.returncode == 0, output[-3000:]
    assert "points_seen" in output
    # Whatever the hour: the demo's shop keeps no quiet hours, and says so.
    assert "The demo's shop has no quiet hours" in output
    # The welcome emails of the simulated sign-ups, accepted by the demo's own SMTP server.
    assert f"Emails go to {mail}" in output
    sent = emails(mail)
    assert sent and all(b"Subject:" in message.read_bytes() for message in sent)
    assert f"Emails the demo sent: {len(sent)} in {mail}" in output
    for port in ports.values():
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except httpx.HTTPError:
            continue
        raise AssertionError(f"a service still answers on port {port} after Ctrl-C")
