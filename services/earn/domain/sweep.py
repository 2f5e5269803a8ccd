"""Carrying a member shop's own balances into its coalition's account: the entries, planned.

While a shop is a member, anything left on its own accounts (a balance from before the join, a
late order dated before it, points released after it) is moved by pairs of `adjusted` entries
with reason `coalition.joined`: minus on the shop's account, plus on the coalition's, naming
the shop. Open lots keep their expiry dates. Entry ids derive from the account's last ledger
entry, so a pass re-run over the same ledger writes nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from services.earn.domain.expiry import LedgerLine, Lot, account_of
from services.earn.domain.ledger import NewEntry
from shared.holders import shop_scoped

JOINED: Final = "coalition.joined"


@dataclass(frozen=True, slots=True)
class ShopPoints:
    """A member shop's own points account, as the sweep reads it."""

    shop_id: str
    customer_id: str
    balance: int
    last_seq: int  # of the account's last ledger entry
    lines: Sequence[LedgerLine]  # its points entries, oldest first


@dataclass(frozen=True, slots=True)
class ShopCredit:
    """A member shop's own store credit in one currency, as the sweep reads it."""

    shop_id: str
    customer_id: str
    currency: str
    balance_minor: int
    last_seq: int


def open_lots(lines: Sequence[LedgerLine], balance: int) -> list[Lot]:
    """The points of `balance` that have an expiry date, per date, oldest first.

    Only the entries since the account's last sweep count: a sweep leaves the account at zero.
    What was spent, deducted or expired is taken from the oldest lots, as the expiry pass does;
    what the lots hold beyond the balance (a reversal of an order swept before) as well."""
    since = _since_last_sweep(lines)
    if balance <= 0:
        return []
    account = account_of("", balance=balance, last_order_at=None, lines=since)
    dated = sum(lot.points for lot in account.lots)
    taken = max(account.consumed + account.expired, dated - balance)
    lots = []
    for lot in account.lots:  # by expiry date
        used = min(lot.points, taken)
        taken -= used
        if lot.points > used:
            lots.append(Lot(lot.expires_at, lot.points - used))
    return lots


def carried_points(account: ShopPoints, coalition_id: str, *, at: datetime) -> list[NewEntry]:
    """The pairs that move the account's whole balance to the coalition's account: one per
    open lot (keeping its date), one for the points without a date (or a negative balance)."""
    if account.balance == 0:
        return []
    lots = open_lots(account.lines, account.balance)
    parts: list[tuple[int, datetime | None]] = [(lot.points, lot.expires_at) for lot in lots]
    rest = account.balance - sum(points for points, _ in parts)
    if rest != 0:
        parts.append((rest, None))
    entries = []
    for n, (points, expires_at) in enumerate(parts):
        local = f"{JOINED}:{account.customer_id}:{account.last_seq}:{n}"
        entries += _pair(account, coalition_id, local, points, at=at, expires_at=expires_at)
    return entries


def carried_credit(credit: ShopCredit, coalition_id: str, *, at: datetime) -> list[NewEntry]:
    """The pair that moves the store credit in one currency to the coalition's account."""
    if credit.balance_minor == 0:
        return []
    local = f"{JOINED}-credit:{credit.customer_id}:{credit.currency}:{credit.last_seq}"
    return _pair(credit, coalition_id, local, credit.balance_minor, at=at)


def missing_currencies(
    shop_currencies: Iterable[str], coalition_currencies: Iterable[str]
) -> list[str]:
    """The shop's currencies the coalition's programme has no rate for: points move 1:1 into
    the coalition's currency, which must therefore be the shop's too. Empty: the sweep may run."""
    return sorted(set(shop_currencies) - set(coalition_currencies))


def _pair(
    account: ShopPoints | ShopCredit,
    coalition_id: str,
    local: str,
    amount: int,
    *,
    at: datetime,
    expires_at: datetime | None = None,
) -> list[NewEntry]:
    """Minus `amount` at the shop's account, plus at the coalition's, naming the shop; the
    plus keeps the lot's date, if any."""
    currency = account.currency if isinstance(account, ShopCredit) else None

    def entry(holder: str, delta: int, side: str) -> NewEntry:
        into = side == "in"
        return NewEntry(
            entry_id=shop_scoped(account.shop_id, f"{local}:{side}"),
            shop_id=holder,
            customer_id=account.customer_id,
            kind="adjusted",
            delta=delta,
            reason=JOINED,
            order_id=None,
            source_event_id=None,
            occurred_at=at,
            balance_kind="points" if currency is None else "store_credit",
            currency=currency,
            expires_at=expires_at if into else None,
            at_shop=account.shop_id if into else None,
        )

    return [entry(account.shop_id, -amount, "out"), entry(coalition_id, amount, "in")]


def _since_last_sweep(lines: Sequence[LedgerLine]) -> Sequence[LedgerLine]:
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].reason == JOINED:
            return lines[i + 1 :]
    return lines
