"""Use cases of the earn service: decide with the domain, persist in the caller's transaction.

Each takes the transaction's unit of work (unit_of_work.py), so it runs as well against the
in-memory one of the unit tests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import structlog

from services.earn.adapters.expiry import DueAccount
from services.earn.adapters.ledger import SOURCE, TOPIC
from services.earn.adapters.spends import CreditSpend, Redemption
from services.earn.adapters.tiers import TierSeen
from services.earn.domain.expiry import (
    ExpiringAccount,
    ExpiryPlan,
    ExpiryWarning,
    account_of,
    plan_expiry,
)
from services.earn.domain.ledger import (
    NewEntry,
    WrittenEntry,
    adjusted_entry,
    earned_entries,
    expired_entry,
    shop_scoped,
)
from services.earn.domain.memberships import MembershipRow, memberships_bought, purchased_messages
from services.earn.domain.order_batch import (
    Counters,
    OrderKey,
    Paid,
    admit,
    decide_paid,
    first_payments,
    settle,
)
from services.earn.domain.order_changes import Changes, release
from services.earn.domain.spending import (
    POINTS,
    SpendKind,
    check_spend,
    debit_entry,
    restore_entry,
    store_credit,
)
from services.earn.programme import Programme
from services.earn.programme_book import ProgrammeBook
from services.earn.refusals import Conflict, InvalidField, NotFound
from services.earn.rewards import price, voucher_code
from services.earn.unit_of_work import Spends, Transactions, UnitOfWork
from shared.clock import Clock
from shared.consumer import Incoming, Rejection, dead_letter
from shared.errors import RejectedMessage
from shared.events import CloudEvent, PointsExpiring, encode_event, make_event, parse_event
from shared.events.times import AHEAD_MAX
from shared.outbox import OutboxMessage

log = structlog.get_logger(__name__)

CHECKOUT: Final = "checkout"  # the reason of a store credit spend's entry

T = TypeVar("T", Redemption, CreditSpend)


async def record_tier_changes(uow: UnitOfWork, events: Sequence[Incoming]) -> list[Rejection]:
    """tier.changed tells earn the multiplier from its effective time on; tier.at_risk is not
    earn's concern."""
    await uow.tiers.record(
        [
            TierSeen(
                event_id=event.id,
                shop_id=event.data.shop_id,
                customer_id=event.data.customer_id,
                tier=event.data.to_tier,
                multiplier=event.data.multiplier,
                effective_at=event.data.effective_at,
            )
            for incoming in events
            if (event := incoming.event) is not None and event.type == "tier.changed"
        ],
    )
    return []


async def apply_orders(
    uow: UnitOfWork,
    events: Sequence[Incoming],
    *,
    programmes: ProgrammeBook,
    clock: Clock,
    ahead_max: timedelta = AHEAD_MAX,
) -> list[Rejection]:
    """A batch of shop.orders, in the order the shop published them, each under its shop's
    programme in force at the event's time: its payments in one pass (load what the rules
    need, decide in memory, persist), then its changes.

    An event dated more than `ahead_max` after now is refused: its points would wait pending
    until then. An event of a shop with no programme is refused (UnknownShop)."""
    now = clock.now()
    batch = admit(events, programmes, now=now, ahead_max=ahead_max)
    fresh, again = first_payments(batch.paid, await uow.orders.known(batch.paid_keys))
    for event in again:
        log.info("order_paid_again", order_id=event.data.order_id, event_id=event.id)
    multipliers = await uow.tiers.multipliers_at(
        [(e.data.shop_id, e.subject, e.time) for _, e in fresh]
    )
    held = await uow.accounts.held([(e.data.shop_id, e.subject) for _, e in fresh]) if fresh else {}
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
                programme, shop_id=o.shop_id, customer_id=o.customer_id, order_id=o.order_id,
                currency=o.currency, paid_event_id=o.paid_event_id, at=o.paid_at,
                points=o.points, credit=o.credit_minor,
            )  # fmt: skip
    await uow.orders.add([o for o, _ in orders], available=available)
    await uow.counters.record_campaigns(counters.granted)
    await uow.outbox.add(purchased_messages(bought, recorded))
    await uow.ledger.write(entries)
    keys = [(o.shop_id, o.order_id) for o, _ in orders]
    await uow.referrals.after_orders(keys, programmes)
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


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    accounts: int
    expired_points: int
    warnings: int


async def expire_due(
    transactions: Transactions, programmes: ProgrammeBook, *, now: datetime, chunk: int
) -> ExpiryReport:
    """Everything due by `now`, chunk by chunk, each chunk committed on its own."""
    accounts = points = warnings = 0
    while True:
        async with transactions() as uow:
            done, expired, warned = await _expire_chunk(uow, programmes, now=now, limit=chunk)
        accounts, points, warnings = accounts + done, points + expired, warnings + warned
        if done < chunk:
            break
    if accounts:
        log.info(
            "expiry_pass_done",
            at=now.isoformat(),
            accounts=accounts,
            expired_points=points,
            warnings=warnings,
        )
    return ExpiryReport(accounts, points, warnings)


async def _expire_chunk(
    uow: UnitOfWork, programmes: ProgrammeBook, *, now: datetime, limit: int
) -> tuple[int, int, int]:
    """One chunk of the expiry pass in the caller's transaction: (accounts, points, warnings).
    Each account is planned under its shop's programme in force now. Only the shops the book
    knows whose points expire are looked at: the accounts of the others are left as they are
    (due at once should that change)."""
    shops = [s for s in programmes.shops() if programmes.at(s, now).expiry.mode != "never"]
    if not shops:
        return 0, 0, 0
    due = await uow.expiry.take_due(now=now, limit=limit, shops=shops)
    keys = [(a.shop_id, a.customer_id) for a in due]
    lines = await uow.expiry.lines(keys)
    sent = await uow.expiry.warnings_sent(keys)
    plans: list[tuple[DueAccount, ExpiryPlan]] = []
    for a, key in zip(due, keys, strict=True):
        account = account_of(
            a.customer_id,
            balance=a.balance,
            last_order_at=a.last_order_at,
            lines=lines[key],
            warned=frozenset(sent.get(key, ())),
        )
        plans.append((a, _expiry_plan(programmes, a.shop_id, account, now)))
    entries = [
        expired_entry(
            a.shop_id,
            plan.entry_id,
            a.customer_id,
            plan.expire,
            reason=plan.reason or "expiry",
            at=plan.expired_at or now,
        )
        for a, plan in plans
        if plan.expire > 0 and plan.entry_id is not None
    ]
    await uow.ledger.write(entries)
    warnings = [(a, w, a.balance - plan.expire) for a, plan in plans for w in plan.warnings]
    fresh = await uow.expiry.record_warnings(
        [(a.shop_id, w.warning_id, a.customer_id, w.points, w.expires_at) for a, w, _ in warnings],
        sent_at=now,
    )
    await uow.outbox.add(
        [
            _expiry_warning(a, w, balance, now)
            for a, w, balance in warnings
            if (a.shop_id, w.warning_id) in fresh
        ],
    )
    await uow.expiry.schedule_checks(
        [(a.shop_id, a.customer_id, plan.next_check_at) for a, plan in plans]
    )
    return len(due), sum(-e.delta for e in entries), len(fresh)


def _plan(
    programmes: ProgrammeBook, shop_id: str, account: ExpiringAccount, now: datetime
) -> ExpiryPlan:
    """What the pass does to the account under its shop's programme in force now."""
    programme = programmes.at(shop_id, now)
    return plan_expiry(programme.expiry, account, now, programme.zone)


def _warning(account: DueAccount, w: ExpiryWarning, balance: int, now: datetime) -> OutboxMessage:
    customer = account.customer_id
    event = make_event(
        "points.expiring",
        source=SOURCE,
        subject=customer,
        id=shop_scoped(account.shop_id, w.warning_id),
        time=now,
        data=PointsExpiring(
            customer_id=customer,
            shop_id=account.shop_id,
            points=w.points,
            expires_at=w.expires_at,
            balance=balance,
        ),
    )
    return OutboxMessage(TOPIC, customer.encode(), encode_event(event))


def _expiry_plan(
    programmes: ProgrammeBook, shop_id: str, account: ExpiringAccount, now: datetime
) -> ExpiryPlan:
    """What the pass does to the account under its shop's programme in force now."""
    programme = programmes.at(shop_id, now)
    return plan_expiry(programme.expiry, account, now, programme.zone)


def _expiry_warning(
    account: DueAccount, w: ExpiryWarning, balance: int, now: datetime
) -> OutboxMessage:
    customer = account.customer_id
    event = make_event(
        "points.expiring",
        source=SOURCE,
        subject=customer,
        id=shop_scoped(account.shop_id, w.warning_id),
        time=now,
        data=PointsExpiring(
            customer_id=customer,
            shop_id=account.shop_id,
            points=w.points,
            expires_at=w.expires_at,
            balance=balance,
        ),
    )
    return OutboxMessage(TOPIC, customer.encode(), encode_event(event))


async def _counters(uow: UnitOfWork, paid: Paid) -> Counters:
    """The counters the batch's campaigns and punch cards need, locked; none read without."""
    totals, usage = paid.campaign_needs()
    adds = paid.punches()
    if not totals and not adds:
        return Counters()
    locked, used = await uow.counters.lock_campaigns(totals, usage)
    return Counters(totals=locked, usage=used, punched=await uow.counters.punch(adds))


@dataclass(frozen=True, slots=True)
class RedeemReward:
    """The customer spends points on a reward of the shop's catalogue."""

    shop_id: str
    customer_id: str
    reward: str
    currency: str | None = None
    steps: int | None = None
    points: int | None = None


@dataclass(frozen=True, slots=True)
class Redeemed:
    redemption: Redemption
    entry: WrittenEntry


@dataclass(frozen=True, slots=True)
class SpendCredit:
    """The customer pays `amount_minor` minor units of `currency` with store credit held at
    the shop."""

    shop_id: str
    customer_id: str
    currency: str
    amount_minor: int
    order_id: str | None = None


async def redeem_reward(
    uow: UnitOfWork, command: RedeemReward, *, programme: Programme, now: datetime
) -> Redeemed:
    """Take the reward's points with a `redeemed` entry and issue its voucher."""
    reward = programme.reward(command.reward)
    if reward is None:
        known = ", ".join(r.code for r in programme.rewards if r.active) or "none"
        raise InvalidField("body.reward", f"unknown reward {command.reward!r}; offered: {known}")
    if not reward.active:
        raise Conflict(f"reward {reward.code!r} is not offered any more", code="reward_inactive")
    cost = price(reward, currency=command.currency, steps=command.steps, points=command.points)
    rid, written = await _spend(
        uow, POINTS, command.shop_id, command.customer_id, cost.points,
        reason=f"reward:{reward.code}", order_id=None, now=now,
    )  # fmt: skip
    redemption = Redemption(
        shop_id=command.shop_id,
        redemption_id=rid,
        customer_id=command.customer_id,
        reward_code=reward.code,
        reward_name=reward.name,
        reward_kind=reward.kind,
        points=cost.points,
        value=cost.value,
        currency=cost.currency,
        sku=reward.sku,
        voucher_code=voucher_code(),
        status="issued",
        redeemed_entry_id=written.entry.entry_id,
        restored_entry_id=None,
        created_at=now,
        expires_at=now + timedelta(days=reward.valid_days),
    )
    await uow.redemptions.add(redemption)
    log.info(
        "reward_redeemed",
        customer_id=command.customer_id,
        reward=reward.code,
        points=cost.points,
        redemption_id=rid,
    )
    return Redeemed(redemption, written)


async def spend_credit(uow: UnitOfWork, command: SpendCredit, *, now: datetime) -> CreditSpend:
    """Take the amount with a `redeemed` store credit entry and record the spend."""
    sid, written = await _spend(
        uow, store_credit(command.currency), command.shop_id, command.customer_id,
        command.amount_minor, reason=CHECKOUT, order_id=command.order_id, now=now,
    )  # fmt: skip
    spent = CreditSpend(
        shop_id=command.shop_id,
        spend_id=sid,
        customer_id=command.customer_id,
        currency=command.currency,
        amount_minor=command.amount_minor,
        order_id=command.order_id,
        balance_after_minor=written.balance_after,
        status="spent",
        spent_entry_id=written.entry.entry_id,
        restored_entry_id=None,
        created_at=now,
    )
    await uow.credit_spends.add(spent)
    log.info(
        "store_credit_spent",
        customer_id=command.customer_id,
        currency=command.currency,
        amount_minor=command.amount_minor,
        spend_id=sid,
    )
    return spent


async def cancel_redemption(
    uow: UnitOfWork, shop_id: str, redemption_id: str, *, reason: str, now: datetime
) -> Redemption:
    """Void the voucher and give the points back with a `restored` entry, once: cancelling a
    cancelled redemption changes nothing and answers it as it is."""

    def restore(found: Redemption) -> NewEntry:
        return restore_entry(
            POINTS, redemption_id, shop_id=shop_id, customer_id=found.customer_id,
            amount=found.points, reason=f"cancelled:{found.reward_code}", order_id=None, at=now,
        )  # fmt: skip

    missing = NotFound(f"no redemption {redemption_id!r}", code="unknown_redemption")
    found, done = await _cancel(
        uow, uow.redemptions, shop_id, redemption_id,
        missing=missing, restore=restore, reason=reason, now=now,
    )  # fmt: skip
    if done:
        log.info("redemption_cancelled", customer_id=found.customer_id, redemption_id=redemption_id)
    return found


async def cancel_credit_spend(
    uow: UnitOfWork, shop_id: str, spend_id: str, *, reason: str, now: datetime
) -> CreditSpend:
    """Give the credit back with a `restored` entry, once: cancelling a cancelled spend
    changes nothing and answers it as it is."""

    def restore(found: CreditSpend) -> NewEntry:
        return restore_entry(
            store_credit(found.currency), spend_id, shop_id=shop_id,
            customer_id=found.customer_id, amount=found.amount_minor,
            reason=f"cancelled:{CHECKOUT}", order_id=found.order_id, at=now,
        )  # fmt: skip

    missing = NotFound(f"no store credit spend {spend_id!r}", code="unknown_spend")
    found, done = await _cancel(
        uow, uow.credit_spends, shop_id, spend_id,
        missing=missing, restore=restore, reason=reason, now=now,
    )  # fmt: skip
    if done:
        log.info("store_credit_spend_cancelled", customer_id=found.customer_id, spend_id=spend_id)
    return found


@dataclass(frozen=True, slots=True)
class AdjustPoints:
    """Grant (positive) or deduct (negative) points; `force` lets a deduction go below zero.
    `entry_id` is unique within the shop."""

    shop_id: str
    entry_id: str
    customer_id: str
    points: int
    reason: str
    force: bool = False


async def adjust_points(uow: UnitOfWork, command: AdjustPoints, *, now: datetime) -> WrittenEntry:
    """Write one `adjusted` entry. A deduction needs a known customer, and is refused when it
    would take the balance below zero unless forced (a forced one blocks redemptions until
    the balance is positive again)."""
    account = await uow.accounts.lock_points(command.shop_id, command.customer_id)
    if command.points < 0:
        if account is None:
            raise NotFound(
                f"customer {command.customer_id!r} has no points", code="unknown_customer"
            )
        after = account.points_balance + command.points
        if after < 0 and not command.force:
            raise Conflict(
                f"the deduction would leave {after} points; set force to record it anyway",
                code="insufficient_points",
            )
    entry = adjusted_entry(
        command.shop_id,
        command.entry_id,
        command.customer_id,
        command.points,
        reason=command.reason,
        at=now,
    )
    (written,) = await uow.ledger.write([entry])
    log.info("points_adjusted", customer_id=command.customer_id, delta=command.points)
    return written


async def grant_points_in_bulk(
    uow: UnitOfWork,
    shop_id: str,
    batch_id: str,
    grants: Sequence[tuple[str, int]],
    *,
    reason: str,
    now: datetime,
) -> list[WrittenEntry]:
    """Credit every (customer, points) of a batch at the shop; each entry id is derived from
    the batch id and the customer, so the batch can never credit a customer twice."""
    entries = [
        adjusted_entry(shop_id, f"grant:{batch_id}:{c}", c, points, reason=reason, at=now)
        for c, points in grants
    ]
    written = await uow.ledger.write(entries)
    log.info("points_granted_in_bulk", batch_id=batch_id, customers=len(written))
    return written


async def _spend(
    uow: UnitOfWork,
    kind: SpendKind,
    shop_id: str,
    customer_id: str,
    amount: int,
    *,
    reason: str,
    order_id: str | None,
    now: datetime,
) -> tuple[str, WrittenEntry]:
    """Take `amount` of the customer's balance of `kind`: the new spend's id and its entry.

    The balance row is locked first, so concurrent spends of one balance run one after the
    other and each sees what the previous one left: none takes it below zero.
    """
    if kind.currency is None:
        points = await uow.accounts.lock_points(shop_id, customer_id)
        held = None if points is None else (points.points_balance, points.points_pending)
    else:
        credit = await uow.accounts.lock_credit(shop_id, customer_id, kind.currency)
        held = None if credit is None else (credit.balance_minor, credit.pending_minor)
    if held is None:
        raise await _unheld(uow, kind, shop_id, customer_id)
    check_spend(kind, available=held[0], pending=held[1], amount=amount)
    spend_id = kind.new_id()
    entry = debit_entry(
        kind, spend_id, shop_id=shop_id, customer_id=customer_id, amount=amount,
        reason=reason, order_id=order_id, at=now,
    )  # fmt: skip
    (written,) = await uow.ledger.write([entry])
    return spend_id, written


async def _unheld(
    uow: UnitOfWork, kind: SpendKind, shop_id: str, customer_id: str
) -> NotFound | InvalidField:
    """Why a customer without a balance of `kind` cannot spend it: 404 for a customer earn has
    never credited at the shop, 422 naming the currency for one it knows."""
    unknown = NotFound(f"customer {customer_id!r} has no points", code="unknown_customer")
    if kind.currency is None:
        return unknown
    held = [c for c, _, _ in await uow.accounts.read_credit(shop_id, customer_id)]
    if not held and await uow.accounts.read_points(shop_id, customer_id) is None:
        return unknown
    others = f"; store credit is held in {', '.join(held)}" if held else ""
    return InvalidField(
        "body.currency", f"the customer holds no store credit in {kind.currency}{others}"
    )


async def _cancel(
    uow: UnitOfWork,
    spends: Spends[T],
    shop_id: str,
    spend_id: str,
    *,
    missing: NotFound,
    restore: Callable[[T], NewEntry],
    reason: str,
    now: datetime,
) -> tuple[T, bool]:
    """The spend cancelled, and whether this call cancelled it: the first gives the amount
    back (its `restored` entry), later ones change nothing."""
    found = await spends.get(shop_id, spend_id, lock=True)
    if found is None:
        raise missing
    if found.status == "cancelled":
        return found, False
    entry = restore(found)
    await uow.ledger.write([entry])
    await spends.mark_cancelled(
        shop_id, spend_id, restored_entry_id=entry.entry_id, at=now, reason=reason
    )
    cancelled = replace(
        found,
        status="cancelled",
        restored_entry_id=entry.entry_id,
        cancelled_at=now,
        cancel_reason=reason,
    )
    return cancelled, True
