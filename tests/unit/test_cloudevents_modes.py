"""CloudEvents over Kafka in both modes of the protocol binding: a binary-mode record (ce_
headers, the data as body) is read as the structured one it stands for, and refused with the
same class and reason; what only binary records can get wrong has reasons of its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.bindings import kafka
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent
from raw_events import CUSTOMER, envelope, order_paid_data

from shared.errors import RejectedMessage
from shared.events import STRUCTURED_HEADER, parse_kafka_record
from shared.events.binding import structured_from_binary
from shared.outbox import _records

TOPIC = "shop.orders"
Headers = list[tuple[str, bytes]]


def binary(
    event: dict[str, Any], *, content_type: str | None = "application/json"
) -> tuple[Headers, bytes]:
    """The binary-mode record of a structured document, as the binding maps it."""
    headers = [
        (f"ce_{k}", str(v).encode())
        for k, v in event.items()
        if k not in {"data", "datacontenttype"}
    ]
    if content_type is not None:
        headers.append(("content-type", content_type.encode()))
    return headers, json.dumps(event["data"]).encode() if "data" in event else b""


def structured(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def refusal(value: bytes, headers: Headers, key: bytes = CUSTOMER.encode()) -> RejectedMessage:
    with pytest.raises(RejectedMessage) as caught:
        parse_kafka_record(TOPIC, key, value, headers)
    return caught.value


def sdk_event(**data: Any) -> SdkEvent:
    return SdkEvent(
        attributes={
            "id": "evt-sdk-1",
            "type": "order.paid",
            "source": "https://shop.example.com",
            "subject": CUSTOMER,
            "time": datetime(2025, 3, 1, 3, 15, tzinfo=UTC),
            "datacontenttype": "application/json",
        },
        data=order_paid_data(**data),
    )


def as_headers(message: kafka.KafkaMessage) -> Headers:
    return list(message.headers.items())


def test_the_sdk_binary_and_structured_records_give_the_same_event() -> None:
    event = sdk_event()
    as_binary = kafka.to_binary(event, JSONFormat())
    as_structured = kafka.to_structured(event, JSONFormat())

    from_binary = parse_kafka_record(
        TOPIC, CUSTOMER.encode(), as_binary.value, as_headers(as_binary)
    )
    from_structured = parse_kafka_record(
        TOPIC, CUSTOMER.encode(), as_structured.value, as_headers(as_structured)
    )

    assert from_binary == from_structured
    assert from_binary.id == "evt-sdk-1"
    assert from_binary.time == datetime(2025, 3, 1, 3, 15, tzinfo=UTC)


def test_a_record_with_no_headers_is_read_as_structured_json() -> None:
    document = envelope("order.paid", order_paid_data())

    event = parse_kafka_record(TOPIC, CUSTOMER.encode(), structured(document), [])

    assert event.id == "evt-1"


BAD_EVENTS: dict[str, dict[str, Any]] = {
    "unknown type": envelope("order.teleported", order_paid_data()),
    "time outside the window": envelope(
        "order.paid", order_paid_data(), time="2200-01-01T00:00:00Z"
    ),
    "control character in a name": envelope(
        "order.paid",
        order_paid_data(
            items=[
                {"sku": "T", "name": "Te\u0007a", "category": "g", "quantity": 1, "unit_price": "1"}
            ]
        ),
    ),
    "amount too long": envelope(
        "order.paid",
        order_paid_data(totals={"total": {"amount": "1234567890123", "currency": "USD"}}),
    ),
    "source that is no URI": envelope("order.paid", order_paid_data(), source="not a uri"),
    "subject of another customer": envelope("order.paid", order_paid_data(), subject="c-other"),
    "spec version 0.3": envelope("order.paid", order_paid_data(), specversion="0.3"),
    "an extension attribute": envelope("order.paid", order_paid_data(), traceparent="00-ab"),
}


@pytest.mark.parametrize("case", sorted(BAD_EVENTS))
def test_a_bad_event_is_refused_alike_in_both_modes(case: str) -> None:
    document = BAD_EVENTS[case]
    key = str(document["subject"]).encode()

    as_structured = refusal(structured(document), [STRUCTURED_HEADER], key)
    headers, data = binary(document)
    as_binary = refusal(data, headers, key)

    assert (as_binary.error_class, as_binary.reason) == (
        as_structured.error_class,
        as_structured.reason,
    )


# Without ce_specversion a record is not in binary mode: it is read as structured, as before.
@pytest.mark.parametrize("attribute", ["id", "source", "type", "time", "subject"])
def test_a_missing_attribute_is_refused_alike_in_both_modes(attribute: str) -> None:
    document = envelope("order.paid", order_paid_data())
    del document[attribute]
    headers, data = binary(document)

    as_structured = refusal(structured(document), [])
    as_binary = refusal(data, headers)

    assert (as_binary.error_class, as_binary.reason) == (
        as_structured.error_class,
        as_structured.reason,
    )


def test_a_binary_record_keyed_otherwise_is_refused_as_a_structured_one() -> None:
    document = envelope("order.paid", order_paid_data())
    headers, data = binary(document)

    as_binary = refusal(data, headers, key=b"c-other")
    as_structured = refusal(structured(document), [], key=b"c-other")

    assert as_binary.error_class == as_structured.error_class == "KeyMismatch"
    assert as_binary.reason == as_structured.reason


def test_a_key_repeated_in_binary_data_is_refused_as_in_structured_mode() -> None:
    document = envelope("order.paid", order_paid_data())
    headers, _ = binary(document)
    data = json.dumps(document["data"]).encode()[:-1] + b', "currency": "VND"}'

    error = refusal(data, headers)

    assert error.error_class == "DuplicateKey"
    assert "'currency'" in error.reason


def test_a_binary_event_without_data_is_refused_for_its_missing_data() -> None:
    headers, _ = binary(envelope("order.paid", order_paid_data()))

    error = refusal(b"", headers)

    assert error.error_class == "SchemaViolation"
    assert error.reason == "1 invalid field(s): data: Field required"


@pytest.mark.parametrize(
    ("headers_of", "data", "error_class", "words"),
    [
        (lambda h: [*h, ("ce_id", b"evt-2")], None, "DuplicateKey", "'ce_id' is given twice"),
        (
            lambda h: [(n, b"\xff\xfe" if n == "ce_source" else v) for n, v in h],
            None,
            "InvalidHeader",
            "'ce_source' is not UTF-8",
        ),
        (
            lambda h: [(n, b"text/plain" if n == "content-type" else v) for n, v in h],
            None,
            "UnsupportedContentType",
            "must be application/json",
        ),
        (
            lambda h: [
                (n, b"application/json; charset=latin-1" if n == "content-type" else v)
                for n, v in h
            ],
            None,
            "UnsupportedContentType",
            "must be application/json",
        ),
        (lambda h: h, b'{"order_id": ', "InvalidJson", "data is not valid JSON"),
        # Bytes that would close the data and add attributes of their own are not JSON.
        (lambda h: h, b'{}, "id": "evt-forged"', "InvalidJson", "data is not valid JSON"),
        (
            lambda h: [*h, ("ce_datacontenttype", b"application/json")],
            None,
            "SchemaViolation",
            "content-type header",
        ),
    ],
)
def test_a_malformed_binary_record_is_refused_with_a_reason(
    headers_of: Any, data: bytes | None, error_class: str, words: str
) -> None:
    headers, body = binary(envelope("order.paid", order_paid_data()))

    error = refusal(body if data is None else data, headers_of(headers))

    assert error.error_class == error_class
    assert words in error.reason


def test_binary_data_may_say_its_charset_or_leave_content_type_out() -> None:
    document = envelope("order.paid", order_paid_data())
    with_charset = binary(document, content_type="application/json; charset=UTF-8")
    without = binary(document, content_type=None)

    first = parse_kafka_record(TOPIC, CUSTOMER.encode(), with_charset[1], with_charset[0])
    second = parse_kafka_record(TOPIC, CUSTOMER.encode(), without[1], without[0])

    assert first == second
    assert first.datacontenttype == "application/json"


@pytest.mark.parametrize(
    "content_type", [b"application/cloudevents-batch+json", b"application/cloudevents+avro"]
)
def test_a_structured_format_other_than_json_is_refused(content_type: bytes) -> None:
    document = structured(envelope("order.paid", order_paid_data()))

    error = refusal(document, [("content-type", content_type)])

    assert error.error_class == "UnsupportedContentType"


def test_the_content_type_header_decides_over_ce_headers() -> None:
    document = envelope("order.paid", order_paid_data())
    headers, _ = binary(document)

    event = parse_kafka_record(
        TOPIC, CUSTOMER.encode(), structured(document), [STRUCTURED_HEADER, *headers]
    )

    assert event.id == "evt-1"


def test_binary_attributes_become_the_structured_document() -> None:
    document = envelope("order.paid", order_paid_data())
    headers, data = binary(document)

    rebuilt = json.loads(structured_from_binary(data, headers))

    assert rebuilt == document


def test_events_are_relayed_in_structured_mode_and_dead_letters_as_they_came() -> None:
    row = {
        "topics": ["loyalty.points", "shop.orders.dlq"],
        "keys": [b"c-1", b"c-1"],
        "payloads": [b"{}", b"not json"],
        "header_names": ["correlation-id", "ce_id"],
        "header_values": [b"evt-1", b"evt-2"],
        "header_counts": [1, 1],
    }

    (_, _, _, event_headers), (_, _, _, dead_headers) = _records([row])  # type: ignore[list-item]

    assert event_headers == [
        ("content-type", b"application/cloudevents+json; charset=UTF-8"),
        ("correlation-id", b"evt-1"),
    ]
    assert dead_headers == [("ce_id", b"evt-2")]
