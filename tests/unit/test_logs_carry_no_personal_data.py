"""What the consumer logs about events names ids and rules, never a customer's personal data."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import structlog
from support import consumer_record

from shared.clock import SystemClock
from shared.consumer import BatchConsumer, Incoming, Rejection, to_incoming
from shared.correlation import CORRELATION_HEADER

EMAIL = "lan.nguyen@example.com"
NAME = "Nguyễn Thị Lan"
ENDPOINT = "https://push.example.net/send/abc123secret"


def signed_up(event_id: str, time_zone: str) -> bytes:
    return json.dumps(
        {
            "specversion": "1.0",
            "id": event_id,
            "source": "tests/shop",
            "type": "customer.signed_up",
            "time": datetime.now(UTC).isoformat(),
            "subject": "c-77",
            "datacontenttype": "application/json",
            "data": {
                "customer_id": "c-77",
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


async def no_op(conn: object, events: object) -> list[Rejection]:
    return []


def test_applied_and_refused_events_are_logged_without_personal_fields() -> None:
    consumer = BatchConsumer(
        service="notify",
        schema="notify",
        topic="shop.customers",
        handler=no_op,
        clock=SystemClock(),
    )
    good = to_incoming(
        consumer_record(
            signed_up("e-1", "Asia/Ho_Chi_Minh"),
            topic="shop.customers",
            headers=((CORRELATION_HEADER, b"order-9"),),
        )
    )
    bad = to_incoming(
        consumer_record(signed_up("e-2", "Mars/Olympus_Mons"), topic="shop.customers", offset=1)
    )
    assert isinstance(good, Incoming)
    assert isinstance(bad, Rejection)

    with structlog.testing.capture_logs() as logs:
        consumer._log_outcome([good], [bad])

    text = repr(logs)
    assert [entry["event"] for entry in logs] == ["message_dead_lettered", "event_applied"]
    assert logs[1]["correlation_id"] == "order-9"
    assert "time_zone" in logs[0]["reason"]
    for personal in (EMAIL, NAME, ENDPOINT, "Mars/Olympus_Mons"):
        assert personal not in text
