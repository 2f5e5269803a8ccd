"""Spending a balance, one mechanism for both: points on rewards and store credit at checkout.

A spend takes an amount the available balance covers (a negative balance blocks every spend;
pending amounts cannot be spent) with a `redeemed` entry; cancelling it gives the amount back
with a `restored` entry, once. What differs between the two is only wording and ids: held here
as a SpendKind.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from services.earn.domain.ledger import NewEntry
from services.earn.refusals import Conflict
from shared.events import minor_units


@dataclass(frozen=True, slots=True)
class SpendKind:
    """Points (currency None) or the store credit of one currency."""

    currency: str | None
    id_prefix: str  # of the spend's own id
    debit_prefix: str  # of its `redeemed` entry id
    restore_prefix: str  # of its `restored` entry id

    @property
    def balance_kind(self) -> str:
        return "points" if self.currency is None else "store_credit"

    def new_id(self) -> str:
        return random_id(self.id_prefix)

    def amount(self, value: int) -> str:
        if self.currency is None:
            return str(value)
        return f"{from_minor(value, self.currency):f} {self.currency}"


POINTS = SpendKind(None, "rdm-", "redeem:", "restore:")
CREDIT_ID_PREFIX = "csp-"


def store_credit(currency: str) -> SpendKind:
    return SpendKind(currency, CREDIT_ID_PREFIX, "credit-spend:", "credit-restore:")


def random_id(prefix: str) -> str:
    """A new spend id: random, so that ids cannot be enumerated."""
    return f"{prefix}{secrets.token_hex(12)}"


def from_minor(minor: int, currency: str) -> Decimal:
    """Minor units as an amount of the currency, written with its decimal places (1250 USD
    cents is 12.50)."""
    return Decimal(minor).scaleb(-minor_units(currency))


def check_spend(kind: SpendKind, *, available: int, pending: int, amount: int) -> None:
    """Refuse a spend of `amount` that the available balance does not cover (409)."""
    money = kind.amount
    if available < 0:
        if kind.currency is None:
            message = f"redemptions are blocked while the balance is negative ({available} points)"
        else:
            message = (
                f"store credit spends in {kind.currency} are blocked while the credit is "
                f"negative ({money(available)})"
            )
        code = "negative_balance" if kind.currency is None else "negative_credit"
        raise Conflict(message, code=code)
    if available >= amount:
        return
    if kind.currency is None:
        note = f"; {pending} pending points cannot be spent yet" if pending > 0 else ""
        message = f"insufficient points: the reward costs {amount}, {available} are available"
    else:
        note = f"; {money(pending)} pending cannot be spent yet" if pending > 0 else ""
        message = (
            f"insufficient store credit: the spend is {money(amount)}, "
            f"{money(available)} is available"
        )
    code = "insufficient_points" if kind.currency is None else "insufficient_credit"
    raise Conflict(message + note, code=code)


def spend_entry(
    kind: SpendKind,
    spend_id: str,
    *,
    shop_id: str,
    customer_id: str,
    amount: int,
    reason: str,
    order_id: str | None,
    at: datetime,
    at_shop: str | None = None,
    restored: bool = False,
) -> NewEntry:
    """The `redeemed` entry that takes a spend's amount; with `restored`, the `restored` entry
    that gives a cancelled spend's amount back."""
    if restored:
        entry_id, entry_kind, delta = f"{kind.restore_prefix}{spend_id}", "restored", amount
    else:
        entry_id, entry_kind, delta = f"{kind.debit_prefix}{spend_id}", "redeemed", -amount
    return NewEntry(
        entry_id=entry_id,
        shop_id=shop_id,
        customer_id=customer_id,
        kind=entry_kind,
        delta=delta,
        reason=reason,
        order_id=order_id,
        source_event_id=None,
        occurred_at=at,
        balance_kind=kind.balance_kind,
        currency=kind.currency,
        at_shop=at_shop,
    )
