"""Points for actions other than buying: sign-up, birthday, referral (both sides, after the
referred customer's first paid order), review, social share and newsletter subscription.

Each award has a deterministic id (a replay or a second event for the same review changes
nothing) and is decided once; an action's `limit` per `per` is held to a counter locked in the
awarding transaction, so concurrent batches cannot exceed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import structlog

from services.earn.adapters import actions as store
from services.earn.adapters.actions import AwardRow, CustomerSeen, Referral
from services.earn.domain.actions import (
    Claim,
    birthday_after,
    local_year,
    next_birthday_at,
    period_of,
    within_limits,
)
from services.earn.domain.ledger import award_entry
from services.earn.entries import write_entries
from services.earn.programme import ActionRule
from services.earn.programme_book import ProgrammeBook, UnknownShop
from shared.consumer import Incoming, Rejection
from shared.db import ACQUIRE_TIMEOUT_S, Connection
from shared.events import CloudEvent
from shared.holders import Holders, shop_scoped

log = structlog.get_logger(__name__)

_ALONE = Holders()  # no directory (tests, the bench): every shop holds its own accounts

Per = Literal["day", "week", "month", "year", "lifetime"]


@dataclass(frozen=True, slots=True)
class Award:
    """Points for one action, unless its limit (counter, limit, per) is reached."""

    shop_id: str
    award_id: str  # unique in the shop; also the id of its ledger entry (see shop_scoped)
    action: str
    customer_id: str
    points: int
    occurred_at: datetime
    source_event_id: str | None
    limit: tuple[str, int, Per] | None = None
    at_shop: str | None = None  # the member shop, on a coalition's account


def _award(
    rule: ActionRule | None, action: str, award_id: str, event: CloudEvent[Any], holder: str
) -> list[Award]:
    """The award of an action at a shop, to its holder's account: scoped by the holder, so an
    action once per customer (a sign-up) earns once per coalition account, not per member."""
    if rule is None:
        return []
    shop, customer = event.data.shop_id, event.data.customer_id
    limit = (action, rule.limit, rule.per)
    scoped = shop_scoped(holder, award_id)
    at_shop = None if holder == shop else shop
    return [
        Award(holder, scoped, action, customer, rule.points, event.time, event.id, limit, at_shop)
    ]


async def grant(conn: Connection, awards: Sequence[Award], programmes: ProgrammeBook) -> int:
    """Decide each award once, within its limit, under its shop's programme at its time;
    credit those granted. Returns the points."""
    decided = await store.decided_awards(conn, [(a.shop_id, a.award_id) for a in awards])
    fresh: list[Award] = []
    for award in awards:
        if (award.shop_id, award.award_id) not in decided:
            decided.add((award.shop_id, award.award_id))
            fresh.append(award)
    programme_of = {a.award_id: programmes.at(a.shop_id, a.occurred_at) for a in fresh}
    limited = [a for a in fresh if a.limit is not None]
    claims = [
        Claim(
            (
                a.shop_id,
                a.limit[0],
                a.customer_id,
                period_of(a.limit[2], a.occurred_at, programme_of[a.award_id].zone),
            ),
            a.limit[1],
        )
        for a in limited
        if a.limit is not None
    ]
    used = await store.lock_counters(conn, [c.key for c in claims])
    verdicts = within_limits(claims, used)
    refused = {a.award_id for a, ok in zip(limited, verdicts, strict=True) if not ok}
    counts = dict(used)
    for claim, ok in zip(claims, verdicts, strict=True):
        counts[claim.key] += ok
    await store.save_counters(conn, {k: v for k, v in counts.items() if v != used.get(k)})
    rows = [
        AwardRow(
            shop_id=a.shop_id,
            award_id=a.award_id,
            action=a.action,
            customer_id=a.customer_id,
            points=0 if a.award_id in refused else a.points,
            occurred_at=a.occurred_at,
            source_event_id=a.source_event_id,
        )
        for a in fresh
    ]
    await store.record_awards(conn, rows)
    if refused:
        log.info("action_awards_over_limit", awards=len(refused))
    entries = [
        award_entry(
            programme_of[row.award_id],
            award_id=row.award_id,
            shop_id=row.shop_id,
            customer_id=row.customer_id,
            action=row.action,
            points=row.points,
            source_event_id=row.source_event_id,
            at=row.occurred_at,
            at_shop=a.at_shop,
        )
        for row, a in zip(rows, fresh, strict=True)
        if row.points > 0
    ]
    await write_entries(conn, entries)
    return sum(e.delta for e in entries)


# --- shop.customers ---------------------------------------------------------------------


async def apply_customers(
    conn: Connection,
    events: Sequence[Incoming],
    *,
    programmes: ProgrammeBook,
    holders: Holders | None = None,
) -> list[Rejection]:
    """Keep birthdays and time zones, award sign-ups, and note who referred whom; a customer
    of a coalition's member shop is the coalition account's customer."""
    rejections: list[Rejection] = []
    customers = _of_known_shops(events, programmes, holders or _ALONE, rejections)
    known = await store.customer_profiles(conn, [(h, e.data.customer_id) for e, h in customers])
    seen: dict[tuple[str, str], CustomerSeen] = {}
    awards: list[Award] = []
    referrers: list[tuple[str, str, str, str, datetime]] = []
    for event, holder in customers:
        data = event.data
        key = (holder, data.customer_id)
        birthday, time_zone = known.get(key, (None, None))
        birthday, time_zone = data.birthday or birthday, data.time_zone or time_zone
        known[key] = (birthday, time_zone)
        seen[key] = CustomerSeen(
            shop_id=holder,
            customer_id=data.customer_id,
            birthday=data.birthday,
            time_zone=data.time_zone,
            next_birthday_at=_first_birthday(birthday, time_zone, event.time)
            if data.birthday or data.time_zone
            else None,
        )
        if event.type == "customer.signed_up":
            signup = programmes.at(holder, event.time).actions.signup
            awards += _award(signup, "signup", f"signup:{data.customer_id}", event, holder)
        if data.referrer_id is not None:
            referrers.append(
                (data.shop_id, data.customer_id, data.referrer_id, event.id, event.time)
            )
    await store.record_customers(conn, list(seen.values()))
    await grant(conn, awards, programmes)
    await reward_referrals(conn, await store.record_referrers(conn, referrers), programmes)
    return rejections


def _of_known_shops(
    events: Sequence[Incoming],
    programmes: ProgrammeBook,
    holders: Holders,
    rejections: list[Rejection],
) -> list[tuple[CloudEvent[Any], str]]:
    """The batch's events of shops whose holder has a programme, with that holder; the others,
    and those naming a coalition as their shop, are refused (UnknownShop)."""
    kept = []
    for incoming in events:
        event = incoming.event
        if event is None:
            continue
        shop = event.data.shop_id
        holder = holders.at(shop, event.time)
        if programmes.knows(holder) and not holders.is_coalition(shop):
            kept.append((event, holder))
        else:
            rejections.append(Rejection(incoming, UnknownShop(shop)))
    return kept


def _first_birthday(birthday: date | None, time_zone: str | None, at: datetime) -> datetime | None:
    if birthday is None or time_zone is None:
        return None
    zone = ZoneInfo(time_zone)
    return next_birthday_at(birthday, zone, at.astimezone(zone).date())


# --- shop.engagement --------------------------------------------------------------------


async def apply_engagement(
    conn: Connection,
    events: Sequence[Incoming],
    *,
    programmes: ProgrammeBook,
    holders: Holders | None = None,
) -> list[Rejection]:
    """Reviews, social shares and newsletter subscriptions earn, into the holder's account; a
    completed referral is rewarded once the referred customer's first order is paid."""
    rejections: list[Rejection] = []
    awards: list[Award] = []
    referrers: list[tuple[str, str, str, str, datetime]] = []
    for event, holder in _of_known_shops(events, programmes, holders or _ALONE, rejections):
        data = event.data
        actions = programmes.at(holder, event.time).actions
        if event.type == "review.posted":
            review = f"review:{data.review_id}"
            awards += _award(actions.review, "review", review, event, holder)
        elif event.type == "social.shared":
            share = f"share:{data.share_id}"
            awards += _award(actions.social_share, "social_share", share, event, holder)
        elif event.type == "newsletter.subscribed":
            award_id = f"newsletter:{data.subscription_id}"
            awards += _award(actions.newsletter, "newsletter", award_id, event, holder)
        elif event.type == "referral.completed":
            referrers.append(
                (data.shop_id, data.referred_id, data.referrer_id, event.id, event.time)
            )
    await grant(conn, awards, programmes)
    await reward_referrals(conn, await store.record_referrers(conn, referrers), programmes)
    return rejections


# --- referrals ------------------------------------------------------------------------


async def referrals_after_orders(
    conn: Connection, orders: Sequence[tuple[str, str]], *, programmes: ProgrammeBook
) -> None:
    """Called once paid orders (shop, order id) are recorded: a referred customer's first
    paid order completes their referral."""
    await reward_referrals(conn, await store.record_first_orders(conn, orders), programmes)


async def reward_referrals(
    conn: Connection, referrals: Sequence[Referral], programmes: ProgrammeBook
) -> None:
    """Both sides earn, under the shop's programme when the referral completed; the referrer
    within the referral limit, the referred customer always."""
    if not referrals:
        return
    awards = []
    for r in referrals:
        by_order = r.first_paid_at >= r.referral_at
        at = max(r.first_paid_at, r.referral_at)
        rule = programmes.at(r.shop_id, at).actions.referral
        if rule is None:
            continue
        source = r.first_order_event_id if by_order else r.referral_event_id
        awards += [
            Award(
                r.shop_id,
                shop_scoped(r.shop_id, f"referral:{r.referred_id}:referrer"),
                "referral",
                r.referrer_id,
                rule.referrer_points,
                at,
                source,
                ("referral", rule.limit, rule.per),
            ),
            Award(
                r.shop_id,
                shop_scoped(r.shop_id, f"referral:{r.referred_id}:referred"),
                "referral",
                r.referred_id,
                rule.referred_points,
                at,
                source,
            ),
        ]
    await grant(conn, awards, programmes)
    await store.mark_referrals_rewarded(conn, [(r.shop_id, r.referred_id) for r in referrals])


# --- birthdays --------------------------------------------------------------------------


async def award_birthdays(
    conn: Connection, programmes: ProgrammeBook, *, now: datetime, limit: int
) -> int:
    """Award the birthdays begun by `now` (local midnight in each customer's zone), a chunk of
    customers of the shops the book knows claimed with SKIP LOCKED; `birthday:<customer>:<year>`
    is given at most once per shop, under the shop's programme when the birthday began."""
    due = await store.take_birthdays(conn, now=now, limit=limit, shops=programmes.shops())
    awards = []
    nexts = []
    for d in due:
        zone = ZoneInfo(d.time_zone)
        points = programmes.at(d.shop_id, d.due_at).actions.birthday
        if points is not None:
            award_id = shop_scoped(
                d.shop_id, f"birthday:{d.customer_id}:{local_year(d.due_at, zone)}"
            )
            awards.append(
                Award(d.shop_id, award_id, "birthday", d.customer_id, points, d.due_at, None)
            )
        nexts.append((d.shop_id, d.customer_id, birthday_after(d.birthday, zone, d.due_at, now)))
    await grant(conn, awards, programmes)
    await store.set_next_birthdays(conn, nexts)
    return len(due)


async def run_birthdays(
    pool: asyncpg.Pool, programmes: ProgrammeBook, *, now: datetime, chunk: int
) -> int:
    """Every birthday begun by `now`, chunk by chunk; the number of customers looked at."""
    customers = 0
    while True:
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            done = await award_birthdays(conn, programmes, now=now, limit=chunk)
        customers += done
        if done < chunk:
            break
    if customers:
        log.info("birthday_pass_done", at=now.isoformat(), customers=customers)
    return customers
