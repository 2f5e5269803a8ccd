"""Events turned into fact rows: one row per key per batch, whatever the batch repeats."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


@dataclass(slots=True)
class OrderFact:
    """What a batch says about one order; merged into the stored row."""

    shop_id: str
    order_id: str
    customer_id: str
    currency: str | None = None
    total: Decimal | None = None
    paid_at: datetime | None = None
    refunded: Decimal = Decimal(0)
    fully_refunded: bool = False
    cancelled: bool = False


@dataclass(slots=True)
class CustomerFact:
    """A customer's shop and the earliest sign-up and payment a batch shows."""

    customer_id: str
    shop_id: str
    signed_up_at: datetime | None = None
    first_paid_at: datetime | None = None
    from_sign_up: bool = False


def earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def merge_customer(facts: dict[str, CustomerFact], fact: CustomerFact) -> None:
    """Fold one sighting of a customer into the batch's facts; the sign-up's shop wins."""
    known = facts.get(fact.customer_id)
    if known is None:
        facts[fact.customer_id] = fact
        return
    known.signed_up_at = earliest(known.signed_up_at, fact.signed_up_at)
    known.first_paid_at = earliest(known.first_paid_at, fact.first_paid_at)
    if fact.from_sign_up and not known.from_sign_up:
        known.shop_id, known.from_sign_up = fact.shop_id, True


def merge_joined(joined: dict[str, datetime], customer_id: str, at: datetime) -> None:
    """The earliest time a customer shows up in the programme."""
    known = joined.get(customer_id)
    joined[customer_id] = at if known is None else min(known, at)
