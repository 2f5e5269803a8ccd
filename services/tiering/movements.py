"""What consumed events mean to tiering: movements of the qualifying totals, membership floors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.tiering.domain.calendar import local_day
from services.tiering.domain.contributions import Movement, MovementKind
from services.tiering.domain.rules import POINTS, Basis, Programme
from services.tiering.domain.state import Floor, FloorKind, Member
from shared.callers import DEFAULT_SHOP
from shared.consumer import Incoming
from shared.errors import RejectedMessage
from shared.events import CloudEvent
from shared.holders import shop_scoped

# kind, source key, unit (None: the source's own), amount (None: everything left)
_Reading = tuple[MovementKind, str, str | None, Decimal | None]


def _paid(data: Any) -> _Reading:
    return MovementKind.ADD, data.order_id, data.currency, data.totals.total.amount


def _refunded(data: Any) -> _Reading:
    # A full refund takes back whatever the order still counts, whatever amount it states.
    amount = None if data.full else data.refund.amount
    return MovementKind.REMOVE, data.order_id, data.refund.currency, amount


def _cancelled(data: Any) -> _Reading:
    return MovementKind.CLOSE, data.order_id, None, None


def _earned(data: Any) -> _Reading:
    return MovementKind.ADD_MORE, data.order_id or data.entry_id, POINTS, Decimal(data.delta)


def _reversed(data: Any) -> _Reading:
    # Matched to the earning by order id; a reversal without one waits for its own entry id.
    return MovementKind.REMOVE, data.order_id or data.entry_id, POINTS, Decimal(-data.delta)


_READERS: dict[Basis, dict[str, Callable[[Any], _Reading]]] = {
    Basis.SPEND: {"order.paid": _paid, "order.refunded": _refunded, "order.cancelled": _cancelled},
    Basis.POINTS: {"points.earned": _earned, "points.reversed": _reversed},
}


# Every event type some basis reads: one of them from a shop without a programme is refused.
COUNTED: frozenset[str] = frozenset(t for readers in _READERS.values() for t in readers)


def shop_of(event: CloudEvent[Any]) -> str:
    """The shop an event belongs to (input events name it in `data.shop_id`, ours too)."""
    shop: str = getattr(event.data, "shop_id", DEFAULT_SHOP)
    return shop


def at_shop_of(event: CloudEvent[Any]) -> str:
    """The shop where an event happened: a coalition's events name the member shop in
    `data.at_shop`; every other event's shop is where it happened."""
    at_shop: str | None = getattr(event.data, "at_shop", None)
    return at_shop or shop_of(event)


def movement_of(
    incoming: Incoming, programme: Programme, *, holder: str | None = None
) -> Movement | None:
    """order.paid adds the order's total, order.refunded takes the refund back, order.cancelled
    what is left; with basis points, points.earned adds and points.reversed takes back. Other
    events (order.placed, redemptions, expiry, adjustments, store credit) do not move the
    totals.

    `holder`: whose totals move (the event's shop when None). For a coalition's account, the
    source's key is scoped by the member shop, so that two members' order ids never meet."""
    event = incoming.event
    read = None if event is None else _READERS[programme.basis].get(event.type)
    if event is None or read is None:
        return None
    if getattr(event.data, "balance_kind", "points") != "points":
        return None
    kind, key, unit, amount = read(event.data)
    at: datetime = event.time
    holder = holder or shop_of(event)
    where = at_shop_of(event)
    if where != holder:
        key = shop_scoped(where, key)
    return Movement(
        event_id=event.id,
        shop_id=holder,
        customer_id=event.subject,
        key=key,
        kind=kind,
        unit=unit,
        amount=amount,
        day=local_day(at, programme.zone),
        at=at,
    )


_INSTANT = timedelta(microseconds=1)


MEMBERSHIPS: frozenset[str] = frozenset(("membership.purchased", "membership.cancelled"))


def membership_floor(
    incoming: Incoming, programme: Programme
) -> tuple[Member, Floor, datetime] | RejectedMessage | None:
    """membership.purchased as a floor for its paid period, applied as of the event's time;
    membership.cancelled as the same floor ending at the cancellation."""
    event = incoming.event
    if event is None or event.type not in MEMBERSHIPS:
        return None
    data = event.data
    if not programme.knows(data.tier):
        known = ", ".join(t.code for t in programme.tiers)
        return RejectedMessage(
            f"tier {data.tier!r} is not in the programme ({known})", error_class="UnknownTier"
        )
    ends_at, reason = data.ends_at, f"paid membership, order {data.order_id}"
    if event.type == "membership.cancelled":
        # A floor must end after it starts: cancelled before its start, it lasts an instant.
        ends_at = max(min(data.ends_at, data.cancelled_at), data.starts_at + _INSTANT)
        reason = f"paid membership, order {data.order_id}, cancelled"
    floor = Floor(
        kind=FloorKind.MEMBERSHIP,
        ref=data.order_id,
        tier=data.tier,
        starts_at=data.starts_at,
        ends_at=ends_at,
        reason=reason,
    )
    return (shop_of(event), data.customer_id), floor, event.time
