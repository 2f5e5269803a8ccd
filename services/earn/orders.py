"""Orders: points and store credit earned on payment, pending through the return window, then
available; cancellations and refunds take their share back (and the memberships they give
back), even when they arrive first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from services.earn.actions import referrals_after_orders
from services.earn.adapters import orders as store
from services.earn.adapters.ledger import SCHEMA
from services.earn.adapters.orders import OrderRow
from services.earn.adapters.tiers import multipliers_at
from services.earn.domain.ledger import NewEntry, earned_entries, reversal_entry
from services.earn.domain.orders import (
    Earning,
    capped,
    earning_of,
    first_release,
    over_ledger_limit,
    release_after_completion,
    reversal_target,
)
from services.earn.entries import write_entries
from services.earn.memberships import memberships_cancelled, memberships_purchased
from services.earn.programme_book import ProgrammeBook, UnknownShop
from shared.clock import Clock
from shared.consumer import Incoming, Rejection, dead_letter
from shared.db import Connection
from shared.errors import RejectedMessage
from shared.events import (
    CloudEvent,
    OrderPaid,
    encode_event,
    parse_event,
)
from shared.events.times import AHEAD_MAX, ahead_of_clock
from shared.outbox import OutboxMessage, enqueue

log = structlog.get_logger(__name__)

CHANGES = ("order.completed", "order.cancelled", "order.refunded")


async def apply_orders(
    conn: Connection,
    events: Sequence[Incoming],
    *,
    programmes: ProgrammeBook,
    clock: Clock,
    ahead_max: timedelta = AHEAD_MAX,
) -> list[Rejection]:
    """A batch of shop.orders, in the order the shop published them, each under its shop's
    programme in force at the event's time.

    An event dated more than `ahead_max` after now is refused: its points would wait pending
    until then. An event of a shop with no programme is refused (UnknownShop)."""
    now = clock.now()
    rejections: list[Rejection] = []
    events = _acceptable(events, now, ahead_max, programmes, rejections)
    paid = [(i, e) for i in events if (e := i.event) is not None and e.type == "order.paid"]
    new_orders = await _record_paid(conn, paid, programmes, now, rejections)
    await referrals_after_orders(conn, new_orders, programmes=programmes)
    for incoming in events:
        event = incoming.event
        if event is None or event.type not in CHANGES:
            continue
        error = await apply_change(conn, event, programmes, now)
        if error is not None:
            rejections.append(Rejection(incoming, error))
    # What waited for these orders' payments now applies, in the order it happened.
    for raw in await store.unpark(conn, new_orders):
        waited = parse_event("shop.orders", raw.encode())
        error = await apply_change(conn, waited, programmes, now)
        if error is not None:
            await _dead_letter_waited(conn, waited, raw.encode(), error, now)
    return rejections


def _acceptable(
    events: Sequence[Incoming],
    now: datetime,
    allowed: timedelta,
    programmes: ProgrammeBook,
    rejections: list[Rejection],
) -> list[Incoming]:
    """The events neither dated too far ahead nor of a shop without a programme."""
    kept = []
    for incoming in events:
        event = incoming.event
        error = None if event is None else ahead_of_clock(event, now, allowed)
        if error is None and event is not None and not programmes.knows(event.data.shop_id):
            error = UnknownShop(event.data.shop_id)
        if error is None:
            kept.append(incoming)
        else:
            rejections.append(Rejection(incoming, error))
    return kept


async def _dead_letter_waited(
    conn: Connection, event: CloudEvent[Any], raw: bytes, error: RejectedMessage, now: datetime
) -> None:
    """A waiting event refused once its order is known goes to the dead-letter topic like any
    refused input (partition and offset -1: it was consumed long before), and leaves the inbox
    so that a replay from there is applied anew."""
    waited = Incoming("shop.orders", -1, -1, event.subject.encode(), raw, (), event)
    await enqueue(conn, SCHEMA, [dead_letter(Rejection(waited, error), service="earn", now=now)])
    await conn.execute(f"DELETE FROM {SCHEMA}.inbox WHERE event_id = $1", event.id)
    log.warning("waiting_event_refused", event_id=event.id, error_class=error.error_class)


async def _record_paid(
    conn: Connection,
    paid: Sequence[tuple[Incoming, CloudEvent[Any]]],
    programmes: ProgrammeBook,
    now: datetime,
    rejections: list[Rejection],
) -> list[tuple[str, str]]:
    """Record the batch's paid orders; their (shop, order id)."""
    known = await store.known_orders(conn, [(e.data.shop_id, e.data.order_id) for _, e in paid])
    fresh: list[tuple[Incoming, CloudEvent[Any]]] = []
    for incoming, event in paid:
        key = (event.data.shop_id, event.data.order_id)
        if key in known:  # paid twice under two event ids: the first counts
            log.info("order_paid_again", order_id=event.data.order_id, event_id=event.id)
            continue
        known.add(key)
        fresh.append((incoming, event))
    multipliers = await multipliers_at(
        conn, [(e.data.shop_id, e.subject, e.time) for _, e in fresh]
    )
    held = (
        await store.points_held(conn, [(e.data.shop_id, e.subject) for _, e in fresh])
        if fresh
        else {}
    )
    orders: list[store.NewOrder] = []
    memberships: list[OutboxMessage] = []
    for (incoming, event), multiplier in zip(fresh, multipliers, strict=True):
        order: OrderPaid = event.data
        programme = programmes.at(order.shop_id, event.time)
        earning = earning_of(order, event.time, programme, multiplier)
        if earning is None:
            error = RejectedMessage(
                f"no earning rate is configured for currency {order.currency}",
                error_class="NoEarnRate",
            )
            rejections.append(Rejection(incoming, error))
            continue
        if over_ledger_limit(held, (order.shop_id, order.customer_id), _most_points(earning)):
            error = RejectedMessage(
                "the points of this order would take the customer's points past what the"
                " ledger holds (a 64-bit integer)",
                error_class="PointsOutOfRange",
            )
            rejections.append(Rejection(incoming, error))
            continue
        if earning.bonuses or earning.punch_cards:
            points, breakdown, punches = await _settle(conn, order, earning)
        else:  # most orders: no counters to read, and no coroutine to run for nothing
            points, breakdown, punches = earning.tier_points, _breakdown(earning), []
        orders.append(
            store.NewOrder(
                shop_id=order.shop_id,
                order_id=order.order_id,
                customer_id=order.customer_id,
                currency=order.currency,
                paid_event_id=event.id,
                paid_at=event.time,
                paid_total=order.totals.total.amount,
                base_amount=earning.base_amount,
                points=points,
                credit_minor=earning.credit_minor,
                breakdown=breakdown,
                punches=punches,
                release_at=first_release(event.time, programme),
            )
        )
        if earning.memberships:
            memberships += await memberships_purchased(conn, event, earning)
    # Without a return window the points are available at payment: recorded as such at once,
    # with no pending step to undo.
    now_available = [o for o in orders if o.release_at <= now]
    await store.insert_orders(
        conn, orders, available={(o.shop_id, o.order_id) for o in now_available}
    )
    await enqueue(conn, SCHEMA, memberships)
    entries: list[NewEntry] = []
    for o in now_available:
        entries += earned_entries(
            programmes.at(o.shop_id, o.paid_at),
            shop_id=o.shop_id,
            customer_id=o.customer_id,
            order_id=o.order_id,
            currency=o.currency,
            paid_event_id=o.paid_event_id,
            at=o.paid_at,
            points=o.points,
            credit=o.credit_minor,
        )
    await write_entries(conn, entries)
    return [(o.shop_id, o.order_id) for o in orders]


async def _settle(
    conn: Connection, order: OrderPaid, earning: Earning
) -> tuple[int, dict[str, Any], list[str]]:
    """Campaign caps and punch cards need the counters: the order's points and their parts."""
    breakdown = _breakdown(earning)
    points = earning.tier_points
    for bonus in earning.bonuses:
        campaign = bonus.campaign
        granted = bonus.points
        if campaign.per_customer_cap is not None or campaign.total_cap is not None:
            mine, everyone = await store.use_campaign(
                conn, order.shop_id, campaign.code, order.customer_id
            )
            granted = capped(bonus.points, mine, everyone, campaign)
            if granted > 0:
                await store.record_campaign(
                    conn, order.shop_id, campaign.code, order.customer_id, granted
                )
        if granted > 0:
            breakdown[f"campaign:{campaign.code}"] = granted
            points += granted
    punches = []
    for card in earning.punch_cards:
        count = await store.punch(conn, order.shop_id, card.code, order.customer_id, 1)
        punches.append(card.code)
        if count % card.every == 0:
            breakdown[f"punch_card:{card.code}"] = card.reward_points
            points += card.reward_points
    return points, breakdown, punches


def _most_points(earning: Earning) -> int:
    """The order's points if every campaign and punch card paid in full: checked before any
    counter is moved, so a refused order leaves none behind."""
    bonuses = sum(b.points for b in earning.bonuses)
    return earning.tier_points + bonuses + sum(c.reward_points for c in earning.punch_cards)


def _breakdown(earning: Earning) -> dict[str, Any]:
    """The parts of an order's points before campaigns and punch cards, and its cashback."""
    breakdown: dict[str, Any] = {"base": earning.base_points, "tier": earning.tier_points}
    if earning.credit_minor:
        breakdown["cashback_minor"] = earning.credit_minor
    return breakdown


async def apply_change(
    conn: Connection, event: CloudEvent[Any], programmes: ProgrammeBook, now: datetime
) -> RejectedMessage | None:
    """order.completed starts the return window; order.cancelled and order.refunded take
    points back and end the memberships they give back. An order earn has not seen paid yet
    makes the event wait for it."""
    data = event.data
    order = await store.lock_order(conn, data.shop_id, data.order_id)
    if order is None:
        await store.park(
            conn,
            event_id=event.id,
            shop_id=data.shop_id,
            order_id=data.order_id,
            event_type=event.type,
            at=event.time,
            event=encode_event(event).decode(),
        )
        log.info("order_event_waits", order_id=data.order_id, event_type=event.type)
        return None
    if event.type == "order.completed":
        if order.status == "pending":
            programme = programmes.at(order.shop_id, event.time)
            due = release_after_completion(order.release_at, event.time, programme)
            await store.update_order(conn, order, completed_at=event.time, release_at=due)
            await release(conn, programmes, due_by=now, orders=[(order.shop_id, order.order_id)])
        else:
            await store.update_order(conn, order, completed_at=event.time)
        return None
    if event.type == "order.refunded":
        if data.refund.currency != order.currency:
            return RejectedMessage(
                f"refund in {data.refund.currency} for an order paid in {order.currency}",
                error_class="RefundCurrency",
            )
        refunded = min(order.refunded + data.refund.amount, order.paid_total)
        full = data.full or refunded >= order.paid_total
    else:  # cancelled
        refunded, full = order.paid_total, True
    await _take_back(conn, event, order, refunded, full=full)
    return None


async def _take_back(
    conn: Connection, event: CloudEvent[Any], order: OrderRow, refunded: Any, *, full: bool
) -> None:
    points = reversal_target(order.points, order.paid_total, refunded, full=full)
    credit = reversal_target(order.credit_minor, order.paid_total, refunded, full=full)
    take_points = points - order.points_reversed
    take_credit = credit - order.credit_reversed
    changes: dict[str, Any] = {
        "refunded": refunded,
        "points_reversed": points,
        "credit_reversed": credit,
    }
    cancelled = event.type == "order.cancelled"
    # An order taken back in full before ended its memberships then (also those recorded
    # before earn kept their cancellation). Refunds of an order that cost nothing are full ones
    # from the start: its memberships go with the first.
    paid = order.paid_total > 0
    taken_back_before = order.status == "cancelled" or (paid and order.refunded >= order.paid_total)
    if not taken_back_before:
        await enqueue(conn, SCHEMA, await memberships_cancelled(conn, event, order, full=full))
    if cancelled and order.punches:
        for card in order.punches:
            await store.punch(conn, order.shop_id, card, order.customer_id, -1)
        changes["punches"] = []
    if order.status == "pending":
        if full:
            changes["status"] = "cancelled"
        await store.update_order(conn, order, **changes)
        await store.move_pending_points(conn, [(order.shop_id, order.customer_id, -take_points)])
        if take_credit:
            await store.move_pending_credit(
                conn, [(order.shop_id, order.customer_id, order.currency, -take_credit)]
            )
        return
    await store.update_order(conn, order, **changes)
    if order.status != "available":
        return
    entries = []
    if take_points > 0:
        entries.append(_reversal(event, order, -take_points, None))
    if take_credit > 0:
        entries.append(_reversal(event, order, -take_credit, order.currency))
    await write_entries(conn, entries)


def _reversal(
    event: CloudEvent[Any], order: OrderRow, delta: int, currency: str | None
) -> NewEntry:
    return reversal_entry(
        event_id=event.id,
        event_type=event.type,
        at=event.time,
        shop_id=order.shop_id,
        customer_id=order.customer_id,
        order_id=order.order_id,
        delta=delta,
        currency=currency,
    )


async def release(
    conn: Connection,
    programmes: ProgrammeBook,
    *,
    due_by: datetime,
    orders: Sequence[tuple[str, str]] | None = None,
    limit: int = 1000,
) -> int:
    """Make due pending orders (of every shop, or these (shop, order id)) available: their
    points (less what was taken back) and store credit enter the ledger, with the expiry of
    the programme in force at payment. Returns how many orders were released."""
    if orders is not None and not orders:
        return 0
    # Without a list, the orders of the shops the book knows: a command run with the file
    # alone releases the shop `default`'s.
    shops = programmes.shops() if orders is None else None
    due = await store.take_for_release(conn, orders=orders, shops=shops, due_by=due_by, limit=limit)
    entries: list[NewEntry] = []
    credit_moves: list[tuple[str, str, str, int]] = []
    point_moves: list[tuple[str, str, int]] = []
    for order in due:
        points = order.points - order.points_reversed
        credit = order.credit_minor - order.credit_reversed
        if points > 0:
            point_moves.append((order.shop_id, order.customer_id, -points))
        if credit > 0:
            credit_moves.append((order.shop_id, order.customer_id, order.currency, -credit))
        at = max(order.release_at, order.paid_at)
        entries += earned_entries(
            programmes.at(order.shop_id, order.paid_at),
            shop_id=order.shop_id,
            customer_id=order.customer_id,
            order_id=order.order_id,
            currency=order.currency,
            paid_event_id=order.paid_event_id,
            at=at,
            points=points,
            credit=credit,
        )
    await store.move_pending_points(conn, point_moves)
    await store.move_pending_credit(conn, credit_moves)
    await write_entries(conn, entries)
    return len(due)
