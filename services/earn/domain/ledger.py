"""Ledger entries as values: what an entry holds, and how each cause of one builds it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.earn.domain.expiry import expires_at_for
from services.earn.programme import Programme
from shared.callers import DEFAULT_SHOP
from shared.events.fields import EVENT_ID_MAX, bounded_id
from shared.holders import shop_scoped

Account = tuple[str, str, str | None]  # (holder, customer, None for points or the currency)


@dataclass(slots=True)  # not frozen: one per event, and frozen makes __init__ 3 times slower
class NewEntry:
    """A ledger entry to write; its balance_after is known only once balances are locked."""

    entry_id: str
    customer_id: str
    kind: str
    delta: int
    reason: str
    order_id: str | None
    source_event_id: str | None
    occurred_at: datetime
    balance_kind: str = "points"  # or "store_credit": delta in minor units of `currency`
    currency: str | None = None
    expires_at: datetime | None = None
    shop_id: str = DEFAULT_SHOP  # the account's holder: the shop, or its coalition
    at_shop: str | None = None  # the member shop where it happened; None: shop_id itself

    def __post_init__(self) -> None:
        # The entry id is also the id of its points event: one derived from a long input id
        # ("earn:" and the event's own 256 characters) must still fit an event id.
        if len(self.entry_id) > EVENT_ID_MAX:
            self.entry_id = bounded_id(self.entry_id)

    @property
    def account(self) -> Account:
        """Which balance the entry moves: the points, or the store credit in one currency."""
        return (self.shop_id, self.customer_id, self.currency)


@dataclass(slots=True)
class WrittenEntry:
    entry: NewEntry
    balance_after: int


def earned_entries(
    programme: Programme,
    *,
    shop_id: str,
    customer_id: str,
    order_id: str,
    currency: str,
    paid_event_id: str,
    at: datetime,
    points: int,
    credit: int,
    at_shop: str | None = None,
) -> list[NewEntry]:
    """The ledger entries of an order's points and store credit becoming available at `at`, on
    the account of `shop_id` (the holder; `at_shop` the member shop of a coalition's)."""
    entries = []
    if points > 0:
        entries.append(
            NewEntry(
                entry_id=f"earn:{paid_event_id}",
                shop_id=shop_id,
                customer_id=customer_id,
                kind="earned",
                delta=points,
                reason="order.paid",
                order_id=order_id,
                source_event_id=paid_event_id,
                occurred_at=at,
                expires_at=expires_at_for(programme.expiry, at, programme.zone),
                at_shop=at_shop,
            )
        )
    if credit > 0:
        entries.append(
            NewEntry(
                entry_id=f"cashback:{paid_event_id}",
                shop_id=shop_id,
                customer_id=customer_id,
                kind="earned",
                delta=credit,
                reason="cashback",
                order_id=order_id,
                source_event_id=paid_event_id,
                occurred_at=at,
                balance_kind="store_credit",
                currency=currency,
                at_shop=at_shop,
            )
        )
    return entries


def reversal_entry(
    *,
    event_id: str,
    event_type: str,
    at: datetime,
    shop_id: str,
    customer_id: str,
    order_id: str,
    delta: int,
    currency: str | None,
    at_shop: str | None = None,
) -> NewEntry:
    """What a cancellation or refund (event `event_id`) takes back of an order's points, or of
    its store credit in `currency`."""
    credit = currency is not None
    return NewEntry(
        entry_id=f"{'reverse-credit' if credit else 'reverse'}:{event_id}",
        shop_id=shop_id,
        customer_id=customer_id,
        kind="reversed",
        delta=delta,
        reason=event_type,
        order_id=order_id,
        source_event_id=event_id,
        occurred_at=at,
        balance_kind="store_credit" if credit else "points",
        currency=currency,
        at_shop=at_shop,
    )


def award_entry(
    programme: Programme,
    *,
    award_id: str,
    shop_id: str,
    customer_id: str,
    action: str,
    points: int,
    source_event_id: str | None,
    at: datetime,
    at_shop: str | None = None,
) -> NewEntry:
    """The points an action (a sign-up, a review, a birthday, a referral) earns, expiring as the
    programme in force at the action says."""
    return NewEntry(
        entry_id=award_id,
        shop_id=shop_id,
        customer_id=customer_id,
        kind="earned",
        delta=points,
        reason=action,
        order_id=None,
        source_event_id=source_event_id,
        occurred_at=at,
        expires_at=expires_at_for(programme.expiry, at, programme.zone),
        at_shop=at_shop,
    )


def adjusted_entry(
    shop_id: str, entry_id: str, customer_id: str, points: int, *, reason: str, at: datetime
) -> NewEntry:
    """An operator's correction of a customer's points (a grant, or a deduction)."""
    return NewEntry(
        entry_id=shop_scoped(shop_id, entry_id),
        shop_id=shop_id,
        customer_id=customer_id,
        kind="adjusted",
        delta=points,
        reason=reason,
        order_id=None,
        source_event_id=None,
        occurred_at=at,
    )


def expired_entry(
    shop_id: str,
    entry_id: str,
    customer_id: str,
    points: int,
    *,
    reason: str,
    at: datetime,
    at_shop: str | None = None,
) -> NewEntry:
    """Points that expired at `at`; on a coalition's account, `at_shop` is its last member
    shop with activity."""
    return NewEntry(
        entry_id=shop_scoped(shop_id, entry_id),
        shop_id=shop_id,
        customer_id=customer_id,
        kind="expired",
        delta=-points,
        reason=reason,
        order_id=None,
        source_event_id=None,
        occurred_at=at,
        at_shop=at_shop,
    )
