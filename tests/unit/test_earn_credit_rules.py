"""Spending store credit: amounts in minor units, when the credit allows a spend, the request."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from services.earn.domain.money import MAX_SPEND_MINOR, check_credit, spend_id, to_minor
from services.earn.domain.spending import from_minor
from services.earn.refusals import Conflict, InvalidField
from services.earn.views import CreditSpendRequest


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("12.50", "USD", 1250),
        ("12.5", "USD", 1250),
        ("12.500", "USD", 1250),
        ("7", "USD", 700),
        ("0.01", "USD", 1),
        ("50000", "VND", 50000),
        ("1.234", "KWD", 1234),
    ],
)
def test_an_amount_is_counted_in_minor_units_of_its_currency(
    amount: str, currency: str, minor: int
) -> None:
    assert to_minor(Decimal(amount), currency) == minor


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("0", "USD", "more than 0"),
        ("0.00", "USD", "more than 0"),
        ("-1", "USD", "more than 0"),
        ("1.005", "USD", "more decimal places than USD allows (2)"),
        ("0.5", "VND", "more decimal places than VND allows (0)"),
        ("10000000000000.01", "USD", "at most"),
    ],
)
def test_an_amount_that_is_not_positive_whole_minor_units_within_bounds_is_refused(
    amount: str, currency: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        to_minor(Decimal(amount), currency)


def test_the_largest_spend_is_accepted() -> None:
    assert to_minor(Decimal(MAX_SPEND_MINOR).scaleb(-2), "USD") == MAX_SPEND_MINOR


def test_minor_units_are_written_with_the_currency_decimal_places() -> None:
    assert [
        format(from_minor(1250, "USD"), "f"),
        format(from_minor(0, "USD"), "f"),
        format(from_minor(-800, "USD"), "f"),
        format(from_minor(38000, "VND"), "f"),
        format(from_minor(5, "KWD"), "f"),
    ] == ["12.50", "0.00", "-8.00", "38000", "0.005"]


def conflict(**funds: Any) -> Conflict:
    with pytest.raises(Conflict) as raised:
        check_credit(**funds)
    return raised.value


def test_credit_covering_the_spend_allows_it_down_to_zero() -> None:
    check_credit(balance=1000, pending=0, amount=1000, currency="USD")
    check_credit(balance=1001, pending=0, amount=1000, currency="USD")


def test_credit_short_of_the_spend_is_refused_naming_what_is_available() -> None:
    refused = conflict(balance=999, pending=0, amount=1000, currency="USD")

    assert refused.code == "insufficient_credit"
    assert refused.status == 409
    assert refused.detail == (
        "insufficient store credit: the spend is 10.00 USD, 9.99 USD is available"
    )


def test_pending_credit_cannot_be_spent_and_the_refusal_says_so() -> None:
    refused = conflict(balance=0, pending=5000, amount=1000, currency="VND")

    assert refused.code == "insufficient_credit"
    assert refused.detail.endswith("0 VND is available; 5000 VND pending cannot be spent yet")


def test_a_negative_credit_blocks_every_spend_in_its_currency() -> None:
    refused = conflict(balance=-800, pending=10_000, amount=1, currency="USD")

    assert refused.code == "negative_credit"
    assert "-8.00 USD" in refused.detail


def test_spend_ids_are_random() -> None:
    ids = {spend_id() for _ in range(1000)}

    assert len(ids) == 1000
    assert all(re.fullmatch(r"csp-[0-9a-f]{24}", i) for i in ids)


def locations(body: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        CreditSpendRequest.model_validate_json(json.dumps(body))
    return [".".join(str(p) for p in e["loc"]) for e in raised.value.errors()]


def test_a_spend_request_gives_its_amount_in_minor_units() -> None:
    request = CreditSpendRequest.model_validate_json(
        '{"currency": "USD", "amount": "12.5", "order_id": "o-1"}'
    )

    assert (request.amount_minor(), request.order_id) == (1250, "o-1")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"currency": "XYZ", "amount": "1.00"}, ["currency"]),
        ({"currency": "usd", "amount": "1.00"}, ["currency"]),
        ({"currency": "USD", "amount": "0"}, ["amount"]),
        ({"currency": "USD", "amount": "-1.00"}, ["amount"]),
        ({"currency": "USD", "amount": 5}, ["amount"]),
        ({"currency": "XYZ", "amount": "0"}, ["currency", "amount"]),
        ({"currency": "USD"}, ["amount"]),
        ({"currency": "USD", "amount": "1.00", "order_id": "has space"}, ["order_id"]),
        ({"currency": "USD", "amount": "1.00", "tip": "1"}, ["tip"]),
    ],
)
def test_a_spend_request_names_each_field_at_fault(body: dict[str, Any], fields: list[str]) -> None:
    assert locations(body) == fields


@pytest.mark.parametrize(
    ("currency", "amount"), [("USD", "1.005"), ("VND", "1000.5"), ("JPY", "1.5")]
)
def test_an_amount_finer_than_its_currency_is_refused_as_the_amount_at_fault(
    currency: str, amount: str
) -> None:
    request = CreditSpendRequest.model_validate({"currency": currency, "amount": amount})

    with pytest.raises(InvalidField) as raised:
        request.amount_minor()

    assert raised.value.location == "body.amount"


@pytest.mark.parametrize("amount", [5, 5.0, Decimal(5)])
def test_a_spend_request_decoded_before_validation_still_wants_the_amount_as_text(
    amount: object,
) -> None:
    with pytest.raises(ValidationError) as raised:
        CreditSpendRequest.model_validate({"currency": "USD", "amount": amount})

    assert [e["loc"] for e in raised.value.errors()] == [("amount",)]
