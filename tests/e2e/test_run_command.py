"""The run command: every service and two simulated shops, stopped cleanly by Ctrl-C."""

from __future__ import annotations

import asyncio
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

import asyncpg
import httpx
from infrastructure import Endpoints


def free_base_port() -> int:
    """Six consecutive free ports (one per service), so the test never meets another run's
    services."""
    for _ in range(50):
        base = random.randrange(20_000, 40_000)
        with contextlib.ExitStack() as stack:
            try:
                for offset in range(6):
                    sock = stack.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", base + offset))
            except OSError:
                continue
            return base
    raise AssertionError("no six consecutive free ports")


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


CUSTOMERS = re.compile(r"the same customers \((sim-[0-9a-f]+-)0000 ")
CONSOLE = re.compile(r"^Console  (http://\S+)/sign-in   (\S+) / (\S+) ", re.M)
SHOP_KEY = re.compile(r"^  ([\w-]+) \((\w+)\), read\+redeem key (lk_\S+)$", re.M)
# Each template's earn rate: one point per this much of the order's base.
PER_POINT = {"vn-fashion": ("VND", 10_000), "us-shop": ("USD", 1)}
SENDERS = {"vn-fashion": b"khachhang@thoitrang.example", "us-shop": b"rewards@usshop.example"}


def console_sign_in(output: str) -> tuple[int, str]:
    """Sign in with the account the demo printed: the answer's status and where it leads.
    The cookies are Secure, which httpx keeps only over https: they are sent by hand."""
    found = CONSOLE.search(output)
    assert found is not None, output[-3000:]
    url, email, password = found.groups()
    form = httpx.get(f"{url}/sign-in", timeout=5)
    token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = httpx.post(
        f"{url}/sign-in",
        data={"email": email, "password": password, "csrf_token": token},
        headers={"Cookie": f"__Host-console_sign_in={token}"},
        timeout=10,
    )
    return answer.status_code, answer.headers.get("location", "")


def orders_at_both_shops(database_url: str, prefix: str) -> list[asyncpg.Record]:
    """The paid orders of the run's customers who have orders at both shops."""

    async def query() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(
                """SELECT shop_id, customer_id, currency, base_amount,
                          (breakdown->>'base')::bigint AS base_points
                   FROM earn.orders o
                   WHERE customer_id LIKE $1 AND (SELECT count(DISTINCT shop_id)
                         FROM earn.orders b WHERE b.customer_id = o.customer_id) = 2""",
                prefix + "%",
            )
        finally:
            await conn.close()

    return asyncio.run(query())


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
        "console": base + 5,
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
        deadline = time.monotonic() + 150
        seen: dict[str, dict[str, int]] = {}
        both: list[asyncpg.Record] = []
        output = ""
        while time.monotonic() < deadline:
            assert demo.poll() is None, log_path.read_text()[-3000:]
            try:
                seen = {name: consumed(port) for name, port in ports.items()}
            except httpx.HTTPError:
                time.sleep(0.5)
                continue
            # Fed by the shop: the demo announced itself and the shop saw points come back.
            output = log_path.read_text()
            found = CUSTOMERS.search(output)
            both = orders_at_both_shops(infrastructure.database_url, found[1]) if found else []
            if (
                "All services are up" in output
                and both
                and all(
                    s in b"".join(m.read_bytes() for m in emails(mail)) for s in SENDERS.values()
                )
                and "points_seen" in output
                and seen["earn"].get("shop.orders", 0) > 0
                and seen["notify"].get("shop.customers", 0) > 0
                and seen["analytics"].get("shop.orders", 0) > 0
                and emails(mail)
            ):
                break
            time.sleep(0.5)
        keys = {shop: key for shop, _, key in SHOP_KEY.findall(output)}
        # The same customer id has points at each shop, seen with that shop's key.
        customer = both[0]["customer_id"] if both else "none"
        balances = {
            shop: httpx.get(
                f"http://127.0.0.1:{ports['earn']}/v1/customers/{customer}/balance",
                headers={"X-API-Key": key},
                timeout=2,
            )
            for shop, key in keys.items()
        }
        health = {
            n: httpx.get(f"http://127.0.0.1:{p}/healthz", timeout=2).status_code
            for n, p in ports.items()
        }
        signed_in = console_sign_in(output)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=90)
        log.close()
        output = log_path.read_text()

    # Each shop's orders earn in its currency, at its template's rate.
    assert {r["shop_id"] for r in both} == {"vn-fashion", "us-shop"}, output[-3000:]
    for row in both:
        currency, per_point = PER_POINT[row["shop_id"]]
        assert row["currency"] == currency
        assert row["base_points"] == row["base_amount"] // per_point
    assert any(r["base_points"] > 0 for r in both if r["shop_id"] == "us-shop")
    assert any(r["base_points"] > 0 for r in both if r["shop_id"] == "vn-fashion")
    assert set(keys) == {"vn-fashion", "us-shop"}
    for shop, answer in balances.items():
        assert answer.status_code == 200, (shop, answer.text)
        points = answer.json()["points"]
        assert points["available"] + points["pending"] > 0, (shop, points)
    assert health == dict.fromkeys(ports, 200)
    # The printed demo account signs in to the console and owns both shops.
    assert signed_in == (303, "/shops"), output[-3000:]
    assert seen["earn"]["shop.orders"] > 0
    assert seen["tiering"]["shop.orders"] > 0
    assert seen["notify"]["shop.customers"] > 0
    assert seen["analytics"]["shop.orders"] > 0
    assert demo.returncode == 0, output[-3000:]
    assert "points_seen" in output
    # Whatever the hour: the demo's shops keep no quiet hours, and say so.
    assert "The demo's shops have no quiet hours" in output
    # The welcome emails of the simulated sign-ups, accepted by the demo's own SMTP server.
    assert f"Emails go to {mail}" in output
    sent = emails(mail)
    assert sent and all(b"Subject:" in message.read_bytes() for message in sent)
    # Each shop's emails come from its own sender.
    for sender in SENDERS.values():
        assert any(sender in message.read_bytes() for message in sent), sender
    assert f"Emails the demo sent: {len(sent)} in {mail}" in output
    for port in ports.values():
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except httpx.HTTPError:
            continue
        raise AssertionError(f"a service still answers on port {port} after Ctrl-C")
