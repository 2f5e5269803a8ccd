"""The bounds of the event contract: times, repeated keys, control characters, amounts, keys."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from raw_events import (
    CUSTOMER,
    body,
    envelope,
    order_paid_data,
    rejection,
    signed_up_data,
)

from shared.errors import RejectedMessage
from shared.events import Money, parse_event, parse_record
from shared.events.fields import EVENT_TIME_END, EVENT_TIME_START
from shared.events.schemas import render_schemas


@pytest.mark.parametrize(
    "time",
    [
        "9999-12-31T23:59:59-01:00",  # past year 9999 once in UTC
        "9999-06-01T00:00:00Z",
        "2200-01-01T00:00:00Z",
        "2199-12-31T23:00:00-05:00",  # 2200 in UTC
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:30:00+01:00",  # 1969 in UTC
    ],
)
def test_event_time_outside_the_window_is_rejected(time: str) -> None:
    error = rejection("shop.orders", body(envelope("order.paid", order_paid_data(), time=time)))

    assert error.error_class == "SchemaViolation"
    assert error.reason.startswith("1 invalid field(s): time: Input should be")


@pytest.mark.parametrize("time", ["1970-01-01T00:00:00Z", "2199-12-31T23:59:59.999999Z"])
def test_event_time_at_the_edges_of_the_window_is_accepted(time: str) -> None:
    event = parse_event("shop.orders", body(envelope("order.paid", order_paid_data(), time=time)))

    assert EVENT_TIME_START <= event.time < EVENT_TIME_END


def test_a_birthday_past_the_window_is_rejected() -> None:
    data = signed_up_data(birthday="9999-12-31")

    error = rejection("shop.customers", body(envelope("customer.signed_up", data)))

    assert "data.birthday" in error.reason


def test_a_key_repeated_in_one_object_is_rejected_naming_the_key() -> None:
    text = body(envelope("order.paid", order_paid_data())).decode()
    # The second amount would win in pydantic, the first in other parsers.
    twice = text.replace('"amount": "24.60"', '"amount": "24.60", "amount": "9999999999"')
    assert twice != text

    error = rejection("shop.orders", twice.encode())

    assert error.error_class == "DuplicateKey"
    assert "'amount'" in error.reason


def test_a_repeated_envelope_key_is_rejected() -> None:
    text = body(envelope("order.paid", order_paid_data())).decode()
    twice = text.replace('"subject": "c-42"', '"subject": "c-42", "subject": "c-42"')

    assert rejection("shop.orders", twice.encode()).error_class == "DuplicateKey"


def test_the_same_key_in_different_objects_is_fine() -> None:
    event = parse_event("shop.orders", body(envelope("order.paid", order_paid_data())))

    assert event.data.totals.total.amount == Decimal("24.60")


def _line(name: str) -> dict[str, Any]:
    return {"sku": "T", "name": name, "category": "tea", "quantity": 1, "unit_price": "24.60"}


@pytest.mark.parametrize(
    "text", ["Lotus\x00tea", "Lotus\ntea", "Lotus\ttea", "\x1b[31mtea", "\x85"]
)
def test_control_characters_in_a_name_are_rejected(text: str) -> None:
    data = order_paid_data(
        items=[_line(text)], totals={"total": order_paid_data()["totals"]["total"]}
    )

    error = rejection("shop.orders", body(envelope("order.paid", data)))

    assert "data.items[0].name" in error.reason
    assert text not in error.reason


@pytest.mark.parametrize(
    ("topic", "event_type", "data"),
    [
        ("shop.customers", "customer.signed_up", signed_up_data(name="Lan\x00")),
        ("shop.customers", "customer.signed_up", signed_up_data(email="l\x00an@example.com")),
        (
            "shop.orders",
            "order.cancelled",
            {"order_id": "o-1", "customer_id": CUSTOMER, "reason": "a\x07"},
        ),
    ],
)
def test_control_characters_in_any_text_field_are_rejected(
    topic: str, event_type: str, data: dict[str, Any]
) -> None:
    assert rejection(topic, body(envelope(event_type, data))).error_class == "SchemaViolation"


@pytest.mark.parametrize("event_id", ["evt\x001", "evt\n1", "evt\x7f"])
def test_control_characters_in_an_event_id_are_rejected(event_id: str) -> None:
    raw = body(envelope("order.paid", order_paid_data(), id=event_id))

    assert "id: String should match pattern" in rejection("shop.orders", raw).reason


def test_a_url_with_a_control_character_is_rejected() -> None:
    data = {
        "share_id": "s-1",
        "customer_id": CUSTOMER,
        "network": "x",
        "url": "https://shop.example.com/\x00p",
    }

    error = rejection("shop.engagement", body(envelope("social.shared", data)))

    assert "data.url" in error.reason


def test_an_amount_of_more_than_twelve_digits_is_rejected() -> None:
    data = order_paid_data(
        currency="VND",
        items=[{"sku": "T", "name": "Tea", "category": "g", "quantity": 1, "unit_price": "1"}],
        totals={"total": {"amount": "9999999999999", "currency": "VND"}},
    )

    error = rejection("shop.orders", body(envelope("order.paid", data)))

    assert "data.totals.total.amount" in error.reason
    assert "at most 12 digits before the point" in error.reason


def test_a_unit_price_of_more_than_twelve_digits_is_rejected() -> None:
    line = {**_line("Tea"), "unit_price": "1000000000000"}
    data = order_paid_data(items=[line])

    assert (
        "data.items[0].unit_price"
        in rejection("shop.orders", body(envelope("order.paid", data))).reason
    )


def test_the_largest_amount_is_accepted() -> None:
    money = Money.model_validate_json('{"amount": "999999999999.00000000", "currency": "VND"}')

    assert money.amount == Decimal("999999999999")


def test_python_callers_are_held_to_the_same_bound() -> None:
    with pytest.raises(ValueError, match="less than 1000000000000"):
        Money(amount=Decimal(10) ** 12, currency="VND")


def _record(key: bytes | None) -> RejectedMessage:
    raw = body(envelope("order.paid", order_paid_data()))
    with pytest.raises(RejectedMessage) as caught:
        parse_record("shop.orders", key, raw)
    return caught.value


@pytest.mark.parametrize("key", [None, b""])
def test_a_record_without_a_key_is_rejected(key: bytes | None) -> None:
    error = _record(key)

    assert error.error_class == "KeyMismatch"
    assert "has no key" in error.reason


def test_a_record_keyed_by_another_customer_is_rejected() -> None:
    error = _record(b"c-43")

    assert error.error_class == "KeyMismatch"
    assert "c-43" not in error.reason


def test_a_record_keyed_by_its_subject_is_parsed() -> None:
    raw = body(envelope("order.paid", order_paid_data()))

    event = parse_record("shop.orders", CUSTOMER.encode(), raw)

    assert event.time == datetime(2025, 3, 1, 3, 15, tzinfo=UTC)


def test_the_schema_of_an_event_carries_the_bounds() -> None:
    schema = json.loads(render_schemas()["order.paid.json"])
    time = schema["properties"]["time"]
    line = schema["$defs"]["LineItem"]["properties"]

    assert time["format"] == "date-time"
    assert re.match(time["pattern"], "2199-12-31T00:00:00Z")
    assert not re.match(time["pattern"], "9999-12-31T23:59:59-01:00")
    assert not re.match(time["pattern"], "1969-12-31T23:59:59Z")
    assert not re.match(line["name"]["pattern"], "Lotus\x00tea")
    assert re.match(line["name"]["pattern"], "Lotus tea")
    assert not re.match(line["unit_price"]["pattern"], "1000000000000")
