"""What a dead letter says about itself, and what its replay carries."""

from __future__ import annotations

from services.dlq.records import DeadLetter, dlq_topics


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
