"""Paid memberships: which an order buys, which its cancellation or refunds end, and the
loyalty.memberships events that say so. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from services.earn.domain.orders import (
    MembershipSale,
    membership_ends,
    membership_refund,
    units_by_sku,
)
from shared.events import (
    CloudEvent,
    MembershipCancelled,
    MembershipPurchased,
    encode_event,
    make_event,
)
from shared.holders import shop_scoped
from shared.outbox import OutboxMessage

SOURCE: Final = "loyalty/earn"


@dataclass(frozen=True, slots=True)
class MembershipRow:
    sku: str
    customer_id: str
    tier: str
    starts_at: datetime
    ends_at: datetime
    quantity: int  # units of the SKU the order bought
    refunded_quantity: int  # units refunds have given back so far
    cancelled_at: datetime | None


MembershipRecord = tuple[str, str, str, str, str, datetime, datetime, int]


# (shop, order, sku, units refunded so far, when it ended or None)
MembershipRefund = tuple[str, str, str, int, datetime | None]


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
    bought: Sequence[MembershipRecord],
    recorded: set[tuple[str, str, str]],
    holders: Mapping[tuple[str, str], str],
) -> list[OutboxMessage]:
    """The membership.purchased of each membership recorded now: announced once per order and
    sku, for the account the order earned into (`holders` by shop and order; `shop_id` the
    coalition and `at_shop` the member shop, on a coalition's account)."""
    messages = []
    for shop_id, order_id, sku, customer_id, tier, starts_at, ends_at, _ in bought:
        if (shop_id, order_id, sku) not in recorded:
            continue
        holder = holders.get((shop_id, order_id), shop_id)
        purchased = MembershipPurchased(
            customer_id=customer_id,
            shop_id=holder,
            at_shop=None if holder == shop_id else shop_id,
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


def memberships_ended(
    event: CloudEvent[Any],
    shop_id: str,
    order_id: str,
    held: list[MembershipRow],
    *,
    full: bool,
    holder: str | None = None,
) -> tuple[list[MembershipRow], list[OutboxMessage]]:
    """An order cancelled or refunded in full ends every membership it paid for; a partial
    refund ends those whose sku its refunds, with the earlier ones, have given back every unit
    of. Each membership is cancelled once, whatever events follow. The memberships `held` as
    they are after this event (units refunded, when cancelled), and the cancellations to
    announce, for the account the order earned into (`holder`: the shop's own when None)."""
    holder = holder or shop_id
    items = event.data.items if event.type == "order.refunded" else None
    given_back = units_by_sku(items or [])
    if not full and not given_back:
        return held, []
    after = []
    messages = []
    for m in held:
        if m.cancelled_at is not None or not (full or m.sku in given_back):
            after.append(m)
            continue
        units, every_unit = membership_refund(
            m.quantity, m.refunded_quantity, given_back.get(m.sku, 0)
        )
        ends = full or every_unit
        after.append(replace(m, refunded_quantity=units, cancelled_at=event.time if ends else None))
        if not ends:
            continue
        cancelled = MembershipCancelled(
            customer_id=m.customer_id,
            shop_id=holder,
            at_shop=None if holder == shop_id else shop_id,
            tier=m.tier,
            starts_at=m.starts_at,
            ends_at=m.ends_at,
            order_id=order_id,
            cancelled_at=event.time,
        )
        messages.append(
            _membership_message(
                "membership.cancelled",
                shop_scoped(shop_id, f"membership-cancelled:{order_id}:{m.sku}"),
                event.time,
                cancelled,
            )
        )
    return after, messages


def _membership_message(
    type_: str, event_id: str, at: datetime, data: MembershipPurchased | MembershipCancelled
) -> OutboxMessage:
    """The loyalty.memberships record of a membership bought or cancelled."""
    event = make_event(
        type_, source=SOURCE, subject=data.customer_id, id=event_id, time=at, data=data
    )
    return OutboxMessage("loyalty.memberships", data.customer_id.encode(), encode_event(event))
