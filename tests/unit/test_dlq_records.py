"""What a dead letter says about itself, and what its replay carries."""

from __future__ import annotations

import json

from raw_events import order_paid_data

from services.dlq.records import DeadLetter, dlq_topics
from shared.events import parse_kafka_record


def test_replayed_record_keeps_original_headers_without_dead_letter_ones() -> None:
    dead = DeadLetter(
        dlq_topic="shop.orders.dlq",
        partition=2,
        offset=7,
        timestamp_ms=0,
        key=b"c-1",
        value=b"{}",
        headers=(
            ("trace", b"t1"),
            ("x-dlq-error-class", b"NoEarnRate"),
            ("x-dlq-topic", b"shop.orders"),
            ("x-replay-of", b"shop.orders.dlq/0/1"),
        ),
    )

    assert dead.original_topic == "shop.orders"
    assert dead.replay_headers() == [("trace", b"t1"), ("x-replay-of", b"shop.orders.dlq/2/7")]


def test_dlq_topics_accepts_the_topic_with_or_without_its_suffix() -> None:
    assert dlq_topics("shop.orders") == dlq_topics("shop.orders.dlq") == ["shop.orders.dlq"]
    assert "loyalty.points.dlq" in dlq_topics(None)


def test_a_binary_mode_dead_letter_is_replayed_in_binary_mode() -> None:
    attributes = (
        ("ce_specversion", b"1.0"),
        ("ce_id", b"evt-9"),
        ("ce_source", b"/shop"),
        ("ce_type", b"order.paid"),
        ("ce_time", b"2025-03-01T10:15:00+07:00"),
        ("ce_subject", b"c-42"),
        ("content-type", b"application/json"),
    )
    dead = DeadLetter(
        dlq_topic="shop.orders.dlq",
        partition=0,
        offset=3,
        timestamp_ms=0,
        key=b"c-42",
        value=json.dumps(order_paid_data()).encode(),
        headers=(*attributes, ("x-dlq-error-class", b"NoEarnRate")),
    )

    replayed = dead.replay_headers()
    event = parse_kafka_record(dead.original_topic, dead.key, dead.value, replayed)

    assert replayed[: len(attributes)] == list(attributes)
    assert event.id == "evt-9"
    assert event.data.order_id == "o-1001"
