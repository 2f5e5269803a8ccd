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


# A customer is known per shop: the same customer id at two shops is two customers.
CustomerKey = tuple[str, str]  # (shop id, customer id)


@dataclass(slots=True)
class CustomerFact:
    """The earliest sign-up and payment a batch shows of a customer at a shop."""

    customer_id: str
    shop_id: str
    signed_up_at: datetime | None = None
    first_paid_at: datetime | None = None

    @property
    def key(self) -> CustomerKey:
        return (self.shop_id, self.customer_id)


def earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def merge_customer(facts: dict[CustomerKey, CustomerFact], fact: CustomerFact) -> None:
    """Fold one sighting of a customer at a shop into the batch's facts."""
    known = facts.get(fact.key)
    if known is None:
        facts[fact.key] = fact
        return
    known.signed_up_at = earliest(known.signed_up_at, fact.signed_up_at)
    known.first_paid_at = earliest(known.first_paid_at, fact.first_paid_at)


def merge_joined(joined: dict[CustomerKey, datetime], key: CustomerKey, at: datetime) -> None:
    """The earliest time a customer shows up in a shop's programme."""
    known = joined.get(key)
    joined[key] = at if known is None else min(known, at)
