"""The running services: expositions promtool accepts, and logs that follow one event by its id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from ops import promtool, run
from private_postgres import PrivatePostgres
from support import encoded, eventually, order_paid, unique

EMAIL = "minh.tran@example.com"
NAME = "Trần Văn Minh"
ENDPOINT = "https://push.example.net/send/e2e-secret-endpoint"


def log_lines(path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def signed_up(customer: str, time_zone: str) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": unique("su"),
            "source": "tests/shop",
            "type": "customer.signed_up",
            "time": "2026-01-05T10:00:00Z",
            "subject": customer,
            "datacontenttype": "application/json",
            "data": {
                "customer_id": customer,
                "email": EMAIL,
                "name": NAME,
                "locale": "vi-VN",
                "time_zone": time_zone,
                "consent": {"email": True, "push": True},
                "push_subscription": {
                    "endpoint": ENDPOINT,
                    "keys": {"p256dh": "B" + "A" * 86, "auth": "A" * 22},
                },
            },
        }
    ).encode()


async def test_services_expose_valid_metrics_and_log_one_event_by_its_correlation_id(
    infrastructure: Endpoints, spawn: type
) -> None:
    # A database of the test's own: no other earn of this machine claims the event first.
    database = PrivatePostgres().start()
    customer = unique("c")
    order = order_paid(customer, total="12", currency="USD")
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    try:
        env = (
            ("LOYALTY_DATABASE_URL", database.url),
            ("LOYALTY_LOG_LEVEL", "debug"),
            # notify signs unsubscribe links and refuses to start without a secret.
            ("LOYALTY_UNSUBSCRIBE_SECRET", "e2e-unsubscribe-secret-of-32-characters"),
        )
        running = {name: spawn(name, None, *env).start() for name in ("earn", "tiering", "notify")}
        async with httpx.AsyncClient(timeout=5) as client:
            expositions = {
                n: (await client.get(f"{s.url}/metrics")).text for n, s in running.items()
            }
        await producer.start()
        await producer.send_and_wait("shop.orders", encoded(order), key=customer.encode())
        for time_zone in ("Asia/Ho_Chi_Minh", "Mars/Olympus_Mons"):
            body = signed_up(customer, time_zone)
            await producer.send_and_wait("shop.customers", body, key=customer.encode())

        def notify_saw_the_points() -> list[dict[str, Any]]:
            return [
                line
                for line in log_lines(running["notify"].log_path)
                if line.get("event") == "event_applied"
                and line.get("event_id") == f"earn:{order.id}"
            ]

        def refused_sign_up() -> bool:
            return any(
                line.get("event") == "message_dead_lettered"
                for line in log_lines(running["notify"].log_path)
            )

        async def probe() -> list[dict[str, Any]]:
            return notify_saw_the_points() if refused_sign_up() else []

        seen = await eventually(probe, bool, timeout=60)
        for service in running.values():
            assert service.stop() == 0
    finally:
        await producer.stop()
        database.remove()

    for name, text in expositions.items():
        checked = run(promtool(), "check", "metrics", stdin=text.encode())
        assert checked.returncode == 0, f"{name}: {checked.stdout}{checked.stderr}"
        assert f'loyalty_ready{{service="{name}"}} 1.0' in text
    earn_log = log_lines(running["earn"].log_path)
    assert any(
        line.get("event") == "event_applied"
        and line.get("event_id") == order.id
        and line.get("correlation_id") == order.id
        for line in earn_log
    )
    assert any(
        line.get("event") == "event_relayed"
        and line.get("topic") == "loyalty.points"
        and line.get("correlation_id") == order.id
        for line in earn_log
    )
    assert seen[0]["correlation_id"] == order.id
    assert seen[0]["topic"] == "loyalty.points"
    everything = "".join(s.log_path.read_text(errors="replace") for s in running.values())
    for personal in (EMAIL, NAME, ENDPOINT, NAME.encode("unicode_escape").decode()):
        assert personal not in everything
