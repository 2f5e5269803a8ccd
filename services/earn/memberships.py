"""Paid memberships: announced when their order is paid, cancelled when it is taken back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog

from services.earn.adapters import orders as store
from services.earn.adapters.ledger import SOURCE
from services.earn.adapters.orders import OrderRow
from services.earn.domain.ledger import shop_scoped
from services.earn.domain.orders import (
    MembershipSale,
    membership_ends,
    membership_refund,
    units_by_sku,
)
from shared.db import Connection
from shared.events import (
    CloudEvent,
    MembershipCancelled,
    MembershipPurchased,
    encode_event,
    make_event,
)
from shared.outbox import OutboxMessage

log = structlog.get_logger(__name__)


MembershipRecord = tuple[str, str, str, str, str, datetime, datetime, int]


def memberships_bought(
    sales: Sequence[tuple[CloudEvent[Any], MembershipSale]],
) -> list[MembershipRecord]:
    """The memberships paid orders buy, as rows to record: (shop, order, sku, customer, tier,
    starts, ends, quantity), one per order and sku."""
    return [
        (
            e.data.shop_id,
            e.data.order_id,
            sale.sku,
            e.data.customer_id,
            sale.tier,
            e.time,
            membership_ends(e.time, sale.months),
            sale.quantity,
        )
        for e, sale in sales
    ]


def purchased_messages(
    bought: Sequence[MembershipRecord], recorded: set[tuple[str, str, str]]
) -> list[OutboxMessage]:
    """The membership.purchased of each membership recorded now: announced once per order and
    sku."""
    messages = []
    for shop_id, order_id, sku, customer_id, tier, starts_at, ends_at, _ in bought:
        if (shop_id, order_id, sku) not in recorded:
            continue
        purchased = MembershipPurchased(
            customer_id=customer_id,
            shop_id=shop_id,
            tier=tier,
            starts_at=starts_at,
            ends_at=ends_at,
            order_id=order_id,
        )
        messages.append(
            _membership_message(
                "membership.purchased",
                shop_scoped(shop_id, f"membership:{order_id}:{sku}"),
                starts_at,
                purchased,
            )
        )
    return messages


async def memberships_cancelled(
    conn: Connection, event: CloudEvent[Any], order: OrderRow, *, full: bool
) -> list[OutboxMessage]:
    """An order cancelled or refunded in full ends every membership it paid for; a partial
    refund ends those whose sku its refunds, with the earlier ones, have given back every unit
    of. Each membership is cancelled once, whatever events follow."""
    items = event.data.items if event.type == "order.refunded" else None
    given_back = units_by_sku(items or [])
    if not full and not given_back:
        return []
    refunds: list[tuple[str, int, datetime | None]] = []
    messages = []
    order_id = order.order_id
    for m in await store.memberships_of(conn, order.shop_id, order_id):
        if m.cancelled_at is not None or not (full or m.sku in given_back):
            continue
        units, every_unit = membership_refund(
            m.quantity, m.refunded_quantity, given_back.get(m.sku, 0)
        )
        ends = full or every_unit
        refunds.append((m.sku, units, event.time if ends else None))
        if not ends:
            log.info("membership_kept", order_id=order_id, sku=m.sku, units_refunded=units)
            continue
        cancelled = MembershipCancelled(
            customer_id=m.customer_id,
            shop_id=order.shop_id,
            tier=m.tier,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            order_id=order_id,
            cancelled_at=event.time,
        )
        messages.append(
            _membership_message(
                "membership.cancelled",
                shop_scoped(order.shop_id, f"membership-cancelled:{order_id}:{m.sku}"),
                event.time,
                cancelled,
            )
        )
    await store.refund_memberships(conn, order.shop_id, order_id, refunds)
    return messages


def _membership_message(
    type_: str, event_id: str, at: datetime, data: MembershipPurchased | MembershipCancelled
) -> OutboxMessage:
    """The loyalty.memberships record of a membership bought or cancelled."""
    event = make_event(
        type_, source=SOURCE, subject=data.customer_id, id=event_id, time=at, data=data
    )
    return OutboxMessage("loyalty.memberships", data.customer_id.encode(), encode_event(event))
