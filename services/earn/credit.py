"""Spending store credit: amounts in minor units, whether the credit allows a spend, spend ids.
No I/O."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Final

from services.earn.refusals import Conflict
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


def from_minor(minor: int, currency: str) -> Decimal:
    """Minor units as an amount of the currency, written with its decimal places (1250 USD
    cents is 12.50)."""
    return Decimal(minor).scaleb(-minor_units(currency))


def check_credit(*, balance: int, pending: int, amount: int, currency: str) -> None:
    """Refuse a spend of `amount` minor units that the available credit does not cover: a
    negative credit (after a reversal of spent cashback) blocks every spend in its currency,
    and pending credit cannot be spent."""
    if balance < 0:
        raise Conflict(
            f"store credit spends in {currency} are blocked while the credit is negative "
            f"({_money(balance, currency)})",
            code="negative_credit",
        )
    if balance < amount:
        pending_note = (
            f"; {_money(pending, currency)} pending cannot be spent yet" if pending > 0 else ""
        )
        raise Conflict(
            f"insufficient store credit: the spend is {_money(amount, currency)}, "
            f"{_money(balance, currency)} is available" + pending_note,
            code="insufficient_credit",
        )


def spend_id() -> str:
    """A new spend id: random, so that ids cannot be enumerated."""
    return f"csp-{secrets.token_hex(12)}"


def _money(minor: int, currency: str) -> str:
    return f"{from_minor(minor, currency):f} {currency}"
