"""Use cases of the analytics service: record each topic's events as compact facts.

Every fact names its shop: a customer is keyed by (shop, customer id). Every handler writes
one set-based statement per table and batch, in the consumer's transaction; nothing is
refused, since each event only adds to what is known.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from services.analytics.adapters import facts
from services.analytics.domain.facts import (
    CustomerFact,
    CustomerKey,
    OrderFact,
    merge_customer,
    merge_joined,
)
from shared.consumer import Incoming, Rejection
from shared.db import Connection
from shared.events import (
    CloudEvent,
    CustomerSignedUp,
    MembershipCancelled,
    MembershipPurchased,
    NotificationSuppressed,
    OrderCancelled,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    PointsEntry,
    TierChanged,
)

POINT_KINDS = {
    "points.earned": "earned",
    "points.reversed": "reversed",
    "points.redeemed": "redeemed",
    "points.expired": "expired",
    "points.adjusted": "adjusted",
}
# A member shop's balance carried into its coalition's account (earn's coalition sweep): a
# move between accounts, outstanding but neither issued nor taken back.
CARRIED_REASON = "coalition.joined"


def _events(batch: Sequence[Incoming]) -> Iterator[CloudEvent[Any]]:
    return (i.event for i in batch if i.event is not None)


async def record_customers(
    conn: Connection, batch: Sequence[Incoming], *, schema: str
) -> Sequence[Rejection]:
    """customer.signed_up: the customer at their shop and when they signed up."""
    found: dict[CustomerKey, CustomerFact] = {}
    for event in _events(batch):
        data = event.data
        if isinstance(data, CustomerSignedUp):
            merge_customer(found, CustomerFact(data.customer_id, data.shop_id, event.time))
    await facts.save_customers(conn, schema, found.values())
    return []


async def record_orders(
    conn: Connection, batch: Sequence[Incoming], *, schema: str
) -> Sequence[Rejection]:
    """Orders with their totals, payment time, refunds and cancellation; payers as customers
    of the shop they paid at."""
    orders: dict[tuple[str, str], OrderFact] = {}
    payers: dict[CustomerKey, CustomerFact] = {}
    for event in _events(batch):
        data = event.data
        key = (data.shop_id, data.order_id)
        fact = orders.setdefault(key, OrderFact(data.shop_id, data.order_id, data.customer_id))
        _fold_order(fact, data, event.time)
        if isinstance(data, OrderPaid):
            sighting = CustomerFact(data.customer_id, data.shop_id, first_paid_at=event.time)
            merge_customer(payers, sighting)
    await facts.save_customers(conn, schema, payers.values())
    await facts.save_orders(conn, schema, orders.values())
    return []


def _fold_order(fact: OrderFact, data: Any, at: datetime) -> None:
    if isinstance(data, OrderPaid):
        fact.currency, fact.total = data.currency, data.totals.total.amount
        fact.paid_at = at if fact.paid_at is None else min(fact.paid_at, at)
    elif isinstance(data, OrderPlaced):
        fact.currency = fact.currency or data.currency
        if fact.paid_at is None:
            fact.total = data.totals.total.amount
    elif isinstance(data, OrderRefunded):
        fact.refunded += data.refund.amount
        fact.fully_refunded = fact.fully_refunded or data.full
        fact.currency = fact.currency or data.refund.currency
    elif isinstance(data, OrderCancelled):
        fact.cancelled = True


async def record_points(
    conn: Connection, batch: Sequence[Incoming], *, schema: str
) -> Sequence[Rejection]:
    """Points entries (warnings of expiry carry none; store credit is not points), those
    carried into a coalition's account as kind `carried`; their customers are members from
    then."""
    rows: list[tuple[str, str, str, str, int, datetime, str | None]] = []
    joined: dict[CustomerKey, datetime] = {}
    for event in _events(batch):
        kind = POINT_KINDS.get(event.type)
        if kind is None or not isinstance(event.data, PointsEntry):
            continue
        data = event.data
        merge_joined(joined, (data.shop_id, data.customer_id), event.time)
        if data.balance_kind != "points":  # store credit is money, not points
            continue
        rows.append(
            (
                data.entry_id,
                data.shop_id,
                data.customer_id,
                "carried" if data.reason == CARRIED_REASON else kind,
                data.delta,
                event.time,
                data.at_shop,
            )
        )
    await facts.save_members(conn, schema, joined)
    await facts.save_points(conn, schema, rows)
    return []


async def record_tiers(
    conn: Connection, batch: Sequence[Incoming], *, schema: str
) -> Sequence[Rejection]:
    """tier.changed: the tier in force from its effective time (warnings are not changes)."""
    rows: list[tuple[str, str, str, str, datetime, str | None]] = []
    joined: dict[CustomerKey, datetime] = {}
    for event in _events(batch):
        if isinstance(event.data, TierChanged):
            data = event.data
            key = (data.shop_id, data.customer_id)
            rows.append((event.id, *key, data.to_tier, data.effective_at, data.at_shop))
            merge_joined(joined, (data.shop_id, data.customer_id), data.effective_at)
    await facts.save_members(conn, schema, joined)
    await facts.save_tier_changes(conn, schema, rows)
    return []


async def record_memberships(
    conn: Connection, batch: Sequence[Incoming], *, schema: str
) -> Sequence[Rejection]:
    """membership.purchased: a paid membership makes its buyer a member from its start;
    membership.cancelled ends it early."""
    rows: list[tuple[str, str, str, str, datetime, datetime]] = []
    ended: list[tuple[str, str, str, datetime, datetime]] = []
    joined: dict[CustomerKey, datetime] = {}
    for event in _events(batch):
        data = event.data
        if isinstance(data, MembershipPurchased):
            key = (data.shop_id, data.customer_id)
            rows.append((event.id, *key, data.tier, data.starts_at, data.ends_at))
            merge_joined(joined, key, data.starts_at)
        elif isinstance(data, MembershipCancelled):
            key = (data.shop_id, data.customer_id)
            ended.append((*key, data.tier, data.starts_at, data.cancelled_at))
    await facts.save_members(conn, schema, joined)
    await facts.save_memberships(conn, schema, rows)
    await facts.end_memberships(conn, schema, ended)  # after: a batch may hold both
    return []


async def record_notifications(
    conn: Connection, batch: Sequence[Incoming], *, schema: str
) -> Sequence[Rejection]:
    """notification.sent, .failed and .suppressed (with the reason), at the event's time."""
    rows: list[tuple[str, str, str, str, str, str, str, str | None, datetime]] = []
    for event in _events(batch):
        data = event.data
        outcome = event.type.removeprefix("notification.")
        reason = data.reason if isinstance(data, NotificationSuppressed) else None
        rows.append(
            (
                event.id,
                data.notification_id,
                data.shop_id,
                data.customer_id,
                data.trigger,
                data.channel,
                outcome,
                reason,
                event.time,
            )
        )
    await facts.save_notifications(conn, schema, rows)
    return []
