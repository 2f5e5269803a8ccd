"""The release of pending orders: points and store credit waiting out the return window become
available once it has passed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog

from services.earn.adapters import orders as store
from services.earn.domain.ledger import NewEntry, earned_entries
from services.earn.entries import write_entries
from services.earn.programme_book import ProgrammeBook
from shared.db import Connection

log = structlog.get_logger(__name__)


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
