"""What a dead letter says about itself, and what its replay carries."""

from __future__ import annotations

import json

import pytest
from raw_events import order_paid_data

from services.dlq.records import DeadLetter, dlq_topics, parse_position
from services.dlq.replay import Selection
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


def _dead(
    value: bytes, *, headers: tuple[tuple[str, bytes], ...] = (), offset: int = 0
) -> DeadLetter:
    return DeadLetter("shop.orders.dlq", 0, offset, 0, b"c-1", value, headers)


def test_a_dead_letters_shop_is_its_datas_shop_id_and_default_when_named_nowhere() -> None:
    named = _dead(json.dumps({"type": "order.paid", "data": {"shop_id": "vn-fashion"}}).encode())
    unnamed = _dead(json.dumps({"type": "order.paid", "data": {"order_id": "o-1"}}).encode())
    odd = _dead(json.dumps({"data": {"shop_id": 7}}).encode())
    a_list = _dead(b"[1, 2]")
    binary = _dead(
        json.dumps({"shop_id": "us-shop"}).encode(), headers=(("ce_specversion", b"1.0"),)
    )

    assert named.shop_id == "vn-fashion"
    assert unnamed.shop_id == odd.shop_id == a_list.shop_id == "default"
    assert binary.shop_id == "us-shop"


def test_a_body_that_is_not_json_has_no_shop() -> None:
    assert _dead(b"\xff not json").shop_id is None
    assert _dead(b"").shop_id is None


def test_a_selection_by_shop_leaves_out_other_shops_and_shopless_ones_unless_asked() -> None:
    ours = _dead(b'{"data": {"shop_id": "vn-fashion"}}', offset=1)
    theirs = _dead(b'{"data": {"shop_id": "us-shop"}}', offset=2)
    shopless = _dead(b"garbage", offset=3)
    staff = Selection(["shop.orders.dlq"], shop="vn-fashion")
    operator = Selection(["shop.orders.dlq"], shop="vn-fashion", shopless=True)
    anyone = Selection(["shop.orders.dlq"])

    assert [d.offset for d in (ours, theirs, shopless) if staff.matches(d)] == [1]
    assert [d.offset for d in (ours, theirs, shopless) if operator.matches(d)] == [1, 3]
    assert [d.offset for d in (ours, theirs, shopless) if anyone.matches(d)] == [1, 2, 3]


def test_a_selection_by_positions_takes_only_those() -> None:
    selection = Selection(["shop.orders.dlq"], positions=frozenset({("shop.orders.dlq", 0, 2)}))

    assert [o for o in (1, 2, 3) if selection.matches(_dead(b"{}", offset=o))] == [2]


def test_a_position_is_read_as_list_prints_it_with_or_without_the_suffix() -> None:
    assert parse_position("shop.orders.dlq/2/17") == ("shop.orders.dlq", 2, 17)
    assert parse_position("shop.orders/0/5") == ("shop.orders.dlq", 0, 5)
    for wrong in ("shop.orders/x/1", "/0/1", "shop.orders"):
        with pytest.raises(ValueError, match=r".+"):
            parse_position(wrong)
