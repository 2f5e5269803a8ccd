"""Spending store credit: amounts in minor units, whether the credit allows a spend, spend ids.
No I/O."""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from services.earn.domain.spending import (
    CREDIT_ID_PREFIX,
    check_spend,
    random_id,
    store_credit,
)
from shared.events import check_minor_units, minor_units

MAX_SPEND_MINOR: Final = 10**15  # far beyond any checkout, well inside bigint


def to_minor(amount: Decimal, currency: str) -> int:
    """The amount in minor units of `currency` ("12.50" USD is 1250, "50000" VND is 50000).

    Raises ValueError when the amount is not positive, is finer than the currency's minor
    unit, or is too large (over MAX_SPEND_MINOR minor units).
    """
    if not amount > 0:
        msg = "must be more than 0"
        raise ValueError(msg)
    check_minor_units(amount, currency)
    minor = int(amount.scaleb(minor_units(currency)))
    if minor > MAX_SPEND_MINOR:
        msg = f"must be at most {MAX_SPEND_MINOR} minor units of {currency}"
        raise ValueError(msg)
    return minor


def check_credit(*, balance: int, pending: int, amount: int, currency: str) -> None:
    """Refuse a spend of `amount` minor units that the available credit does not cover: a
    negative credit (after a reversal of spent cashback) blocks every spend in its currency,
    and pending credit cannot be spent."""
    check_spend(store_credit(currency), available=balance, pending=pending, amount=amount)


def spend_id() -> str:
    """A new spend id: random, so that ids cannot be enumerated."""
    return random_id(CREDIT_ID_PREFIX)
