"""Orders: points and store credit earned on payment, pending through the return window, then
available; cancellations and refunds take their share back (and the memberships they give
back), even when they arrive first."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog

from services.earn.adapters import orders as store
from services.earn.adapters.ledger import SCHEMA
from services.earn.adapters.orders import OrderRow
from services.earn.domain.ledger import NewEntry, earned_entries, reversal_entry
from services.earn.domain.orders import (
    release_after_completion,
    reversal_target,
)
from services.earn.entries import write_entries
from services.earn.memberships import memberships_cancelled
from services.earn.programme_book import ProgrammeBook
from shared.consumer import Incoming, Rejection, dead_letter
from shared.db import Connection
from shared.errors import RejectedMessage
from shared.events import (
    CloudEvent,
    encode_event,
    parse_event,
)
from shared.outbox import enqueue

log = structlog.get_logger(__name__)


async def apply_changes(
    conn: Connection,
    changes: Sequence[Incoming],
    paid: Sequence[tuple[str, str]],
    programmes: ProgrammeBook,
    now: datetime,
) -> list[Rejection]:
    """The batch's completions, cancellations and refunds, in batch order, once its payments
    (`paid`, (shop, order id)) are recorded; then what waited for those payments, in the order
    it happened. Returns the batch's changes refused."""
    rejections = []
    for incoming in changes:
        assert incoming.event is not None  # admitted events were parsed
        error = await apply_change(conn, incoming.event, programmes, now)
        if error is not None:
            rejections.append(Rejection(incoming, error))
    for raw in await store.unpark(conn, paid):
        waited = parse_event("shop.orders", raw.encode())
        error = await apply_change(conn, waited, programmes, now)
        if error is not None:
            await _dead_letter_waited(conn, waited, raw.encode(), error, now)
    return rejections


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
