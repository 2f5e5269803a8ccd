"""Raw events as a shop's producer would write them: JSON bodies to parse, and the refusal
they meet."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.errors import RejectedMessage
from shared.events import parse_event

CUSTOMER = "c-42"


def order_paid_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "order_id": "o-1001",
        "customer_id": CUSTOMER,
        "currency": "USD",
        "items": [
            {
                "sku": "TEA-01",
                "name": "Lotus tea",
                "category": "grocery",
                "quantity": 2,
                "unit_price": "12.50",
            }
        ],
        "totals": {
            "subtotal": {"amount": "25.00", "currency": "USD"},
            "discount": {"amount": "5.00", "currency": "USD"},
            "shipping": {"amount": "3.00", "currency": "USD"},
            "tax": {"amount": "1.60", "currency": "USD"},
            "total": {"amount": "24.60", "currency": "USD"},
        },
    }
    data.update(overrides)
    return data


def vnd_order_paid_data(amount: str) -> dict[str, Any]:
    return order_paid_data(
        currency="VND",
        items=[{"sku": "T", "name": "Tea", "category": "g", "quantity": 1, "unit_price": "1"}],
        totals={"total": {"amount": amount, "currency": "VND"}},
    )


def signed_up_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "customer_id": CUSTOMER,
        "email": "lan@example.com",
        "name": "Nguyễn Thị Lan",
        "locale": "vi-VN",
        "time_zone": "Asia/Ho_Chi_Minh",
        "consent": {"email": True, "push": False},
    }
    data.update(overrides)
    return data


def envelope(event_type: str, data: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "https://shop.example.com",
        "type": event_type,
        "time": "2025-03-01T10:15:00+07:00",
        "subject": CUSTOMER,
        "datacontenttype": "application/json",
        "data": data,
    }
    event.update(overrides)
    return event


def body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def rejection(topic: str, raw: bytes) -> RejectedMessage:
    with pytest.raises(RejectedMessage) as caught:
        parse_event(topic, raw)
    return caught.value
