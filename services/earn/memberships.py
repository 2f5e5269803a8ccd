"""Paid memberships: announced when their order is paid, cancelled when it is taken back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from services.earn.adapters import orders as store
from services.earn.adapters.ledger import SOURCE
from services.earn.adapters.orders import OrderRow
from services.earn.domain.ledger import shop_scoped
from services.earn.domain.orders import Earning, membership_ends, membership_refund, units_by_sku
from shared.db import Connection
from shared.events import (
    CloudEvent,
    MembershipCancelled,
    MembershipPurchased,
    OrderPaid,
    encode_event,
    make_event,
)
from shared.outbox import OutboxMessage

log = structlog.get_logger(__name__)


async def memberships_purchased(
    conn: Connection, event: CloudEvent[Any], earning: Earning
) -> list[OutboxMessage]:
    """The memberships a paid order buys, recorded and announced once per order and sku."""
    order: OrderPaid = event.data
    messages = []
    for sale in earning.memberships:
        ends_at = membership_ends(event.time, sale.months)
        if not await store.record_membership(
            conn,
            shop_id=order.shop_id,
            order_id=order.order_id,
            sku=sale.sku,
            customer_id=order.customer_id,
            tier=sale.tier,
            starts_at=event.time,
            ends_at=ends_at,
            quantity=sale.quantity,
        ):
            continue
        purchased = MembershipPurchased(
            customer_id=order.customer_id,
            shop_id=order.shop_id,
            tier=sale.tier,
            starts_at=event.time,
            ends_at=ends_at,
            order_id=order.order_id,
        )
        messages.append(
            _membership_message(
                "membership.purchased",
                shop_scoped(order.shop_id, f"membership:{order.order_id}:{sale.sku}"),
                event.time,
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
