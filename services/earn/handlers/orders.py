"""shop.orders in one pass per batch, and the release of pending orders once their window ends."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from services.earn.domain.ledger import (
    NewEntry,
    earned_entries,
)
from services.earn.domain.memberships import MembershipRow, memberships_bought, purchased_messages
from services.earn.domain.order_batch import (
    Counters,
    OrderKey,
    Paid,
    admit,
    at_shop,
    decide_paid,
    first_orders,
    first_payments,
    settle,
)
from services.earn.domain.order_changes import Changes, release
from services.earn.handlers.actions import reward_referrals
from services.earn.programme_book import ProgrammeBook
from services.earn.unit_of_work import UnitOfWork
from shared.clock import Clock
from shared.consumer import Incoming, Rejection, dead_letter
from shared.errors import RejectedMessage
from shared.events import CloudEvent, encode_event, parse_event
from shared.events.times import AHEAD_MAX
from shared.holders import Holders
from shared.outbox import OutboxMessage

log = structlog.get_logger(__name__)

_ALONE = Holders()  # no directory (tests, the bench): every shop holds its own accounts


async def apply_orders(
    uow: UnitOfWork,
    events: Sequence[Incoming],
    *,
    programmes: ProgrammeBook,
    clock: Clock,
    holders: Holders | None = None,
    ahead_max: timedelta = AHEAD_MAX,
) -> list[Rejection]:
    """A batch of shop.orders, in the order the shop published them, each into the account of
    its shop's holder at the event's time (the shop, or its coalition) under the holder's
    programme in force then: its payments in one pass (load what the rules need, decide in
    memory, persist), then its changes, which take back from the account the order earned into.

    An event dated more than `ahead_max` after now is refused: its points would wait pending
    until then. An event of a shop with no programme, or naming a coalition as its shop, is
    refused (UnknownShop)."""
    now = clock.now()
    batch = admit(events, programmes, holders or _ALONE, now=now, ahead_max=ahead_max)
    fresh, again = first_payments(batch.paid, await uow.orders.known(batch.paid_keys))
    for event in again:
        log.info("order_paid_again", order_id=event.data.order_id, event_id=event.id)
    multipliers = await uow.tiers.multipliers_at(
        [(holder, e.subject, e.time) for _, e, holder in fresh]
    )
    held = await uow.accounts.held([(h, e.subject) for _, e, h in fresh]) if fresh else {}
    paid = decide_paid(fresh, multipliers, held, programmes)
    counters = await _counters(uow, paid)
    orders = settle(paid, counters)
    bought = memberships_bought(paid.sales())
    recorded = await uow.memberships.add(bought)
    # Without a return window the points are available at payment: recorded as such at once,
    # with no pending step to undo.
    entries: list[NewEntry] = []
    available: set[OrderKey] = set()
    for o, programme in orders:
        if o.release_at <= now:
            available.add((o.shop_id, o.order_id))
            entries += earned_entries(
                programme, shop_id=o.holder_id, customer_id=o.customer_id, order_id=o.order_id,
                currency=o.currency, paid_event_id=o.paid_event_id, at=o.paid_at,
                points=o.points, credit=o.credit_minor, at_shop=at_shop(o.shop_id, o.holder_id),
            )  # fmt: skip
    await uow.orders.add([o for o, _ in orders], available=available)
    await uow.counters.record_campaigns(counters.granted)
    if bought:
        holders_of = {(o.shop_id, o.order_id): o.holder_id for o, _ in orders}
        await uow.outbox.add(purchased_messages(bought, recorded, holders_of))
    keys = [(o.shop_id, o.order_id) for o, _ in orders]
    # A referred customer's first paid order completes their referral: both sides' awards join
    # the batch's one ledger write (no statement more unless a referral completes).
    referrals = await uow.customers.record_first_orders(first_orders([o for o, _ in orders]))
    if referrals:
        first = {(r.shop_id, r.referred_id): r.first_order_id for r in referrals}
        at_shops = {
            key: o.shop_id
            for o, _ in orders
            if first.get(key := (o.holder_id, o.customer_id)) == o.order_id
        }
        entries += await reward_referrals(uow, referrals, programmes, at_shops)
    await uow.ledger.write(entries)
    changed = await _apply_changes(uow, batch.changes, keys, programmes, now)
    return batch.rejections + paid.rejections + changed


async def _apply_changes(
    uow: UnitOfWork,
    changes: Sequence[Incoming],
    paid: Sequence[OrderKey],
    programmes: ProgrammeBook,
    now: datetime,
) -> list[Rejection]:
    """The batch's completions, cancellations and refunds in batch order, then the events that
    waited for its payments (`paid`) in the order they happened, in one pass: the orders are
    locked and read once, each change decided in memory, everything written at the end."""
    waited = [
        (parse_event("shop.orders", raw.encode()), raw) for raw in await uow.orders.unpark(paid)
    ]
    events = [i.event for i in changes if i.event is not None] + [e for e, _ in waited]
    if not events:
        return []
    keys = [(e.data.shop_id, e.data.order_id) for e in events]
    rows = await uow.orders.lock_many(keys)
    takes = [
        k for e, k in zip(events, keys, strict=True) if e.type != "order.completed" and k in rows
    ]
    held = await uow.memberships.of_orders(takes)
    state = Changes(rows=dict(rows), memberships=dict(held))
    rejections = []
    for incoming in changes:
        assert incoming.event is not None  # admitted events were parsed
        error = state.decide(incoming.event, programmes, now)
        if error is not None:
            rejections.append(Rejection(incoming, error))
    refused: list[tuple[CloudEvent[Any], str, RejectedMessage]] = []
    for event, raw in waited:
        error = state.decide(event, programmes, now)
        if error is not None:
            refused.append((event, raw, error))
    await _save_changes(uow, state, held)
    await uow.outbox.add(
        state.messages + [_dead_letter_waited(e, raw, error, now) for e, raw, error in refused]
    )
    await uow.inbox.forget([e.id for e, _, _ in refused])
    return rejections


async def _save_changes(
    uow: UnitOfWork, state: Changes, held: dict[OrderKey, list[MembershipRow]]
) -> None:
    """Persist what the changes decided, a statement per table."""
    for event in state.waiting:
        log.info("order_event_waits", order_id=event.data.order_id, event_type=event.type)
    await uow.orders.park_many(
        [
            (e.id, e.data.shop_id, e.data.order_id, e.type, e.time, encode_event(e).decode())
            for e in state.waiting
        ]
    )
    await uow.orders.save_many([state.rows[k] for k in sorted(state.changed)], state.completed_at)
    await uow.accounts.move_pending(state.points_pending, state.credit_pending)
    refunds = []
    for key, after in state.memberships.items():
        for was, now_ in zip(held.get(key, []), after, strict=True):
            if now_ == was:
                continue
            refunds.append((key[0], key[1], now_.sku, now_.refunded_quantity, now_.cancelled_at))
            if now_.cancelled_at is None:
                log.info(
                    "membership_kept",
                    order_id=key[1],
                    sku=now_.sku,
                    units_refunded=now_.refunded_quantity,
                )
    await uow.memberships.refund(refunds)
    await uow.counters.unpunch(state.punches)
    await uow.ledger.write(state.entries)


def _dead_letter_waited(
    event: CloudEvent[Any], raw: str, error: RejectedMessage, now: datetime
) -> OutboxMessage:
    """A waiting event refused once its order is known goes to the dead-letter topic like any
    refused input (partition and offset -1: it was consumed long before), and leaves the inbox
    so that a replay from there is applied anew."""
    waited = Incoming("shop.orders", -1, -1, event.subject.encode(), raw.encode(), (), event)
    log.warning("waiting_event_refused", event_id=event.id, error_class=error.error_class)
    return dead_letter(Rejection(waited, error), service="earn", now=now)


async def release_due(
    uow: UnitOfWork,
    programmes: ProgrammeBook,
    *,
    due_by: datetime,
    orders: Sequence[OrderKey] | None = None,
    limit: int = 1000,
) -> int:
    """Make due pending orders (of every shop the book knows, or these) available; the
    orders are claimed with SKIP LOCKED, so replicas share the work and release each once.
    Returns how many orders were released."""
    if orders is not None and not orders:
        return 0
    # Without a list, the orders of the shops the book knows: a command run with the file
    # alone releases the shop `default`'s.
    shops = programmes.shops() if orders is None else None
    due = await uow.orders.take_for_release(orders=orders, shops=shops, due_by=due_by, limit=limit)
    entries: list[NewEntry] = []
    points: list[tuple[str, str, int]] = []
    credit: list[tuple[str, str, str, int]] = []
    for order in due:
        release(order, programmes, points, credit, entries)
    await uow.accounts.move_pending(points, credit)
    await uow.ledger.write(entries)
    return len(due)


async def _counters(uow: UnitOfWork, paid: Paid) -> Counters:
    """The counters the batch's campaigns and punch cards need, locked; none read without."""
    totals, usage = paid.campaign_needs()
    adds = paid.punches()
    if not totals and not adds:
        return Counters()
    locked, used = await uow.counters.lock_campaigns(totals, usage)
    return Counters(totals=locked, usage=used, punched=await uow.counters.punch(adds))
