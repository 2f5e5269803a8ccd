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

import structlog

from services.earn.adapters import actions as store
from services.earn.adapters.actions import AwardRow, CustomerSeen, Referral
from services.earn.adapters.ledger import NewEntry
from services.earn.domain.actions import (
    Claim,
    birthday_after,
    local_year,
    next_birthday_at,
    period_of,
    within_limits,
)
from services.earn.domain.expiry import expires_at_for
from services.earn.entries import write_entries
from services.earn.programme import ActionRule, Programme
from shared.consumer import Incoming, Rejection
from shared.db import Connection
from shared.events import CloudEvent

log = structlog.get_logger(__name__)

Per = Literal["day", "week", "month", "year", "lifetime"]


@dataclass(frozen=True, slots=True)
class Award:
    """Points for one action, unless its limit (counter, limit, per) is reached."""

    award_id: str
    action: str
    customer_id: str
    points: int
    occurred_at: datetime
    source_event_id: str | None
    limit: tuple[str, int, Per] | None = None


def _award(
    rule: ActionRule | None, action: str, award_id: str, event: CloudEvent[Any]
) -> list[Award]:
    if rule is None:
        return []
    customer = event.data.customer_id
    limit = (action, rule.limit, rule.per)
    return [Award(award_id, action, customer, rule.points, event.time, event.id, limit)]


async def grant(conn: Connection, awards: Sequence[Award], programme: Programme) -> int:
    """Decide each award once, within its limit; credit those granted. Returns the points."""
    decided = await store.decided_awards(conn, [a.award_id for a in awards])
    fresh: list[Award] = []
    for award in awards:
        if award.award_id not in decided:
            decided.add(award.award_id)
            fresh.append(award)
    zone = programme.zone
    limited = [a for a in fresh if a.limit is not None]
    claims = [
        Claim((a.limit[0], a.customer_id, period_of(a.limit[2], a.occurred_at, zone)), a.limit[1])
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
        NewEntry(
            entry_id=row.award_id,
            customer_id=row.customer_id,
            kind="earned",
            delta=row.points,
            reason=row.action,
            order_id=None,
            source_event_id=row.source_event_id,
            occurred_at=row.occurred_at,
            expires_at=expires_at_for(programme.expiry, row.occurred_at, zone),
        )
        for row in rows
        if row.points > 0
    ]
    await write_entries(conn, entries)
    return sum(e.delta for e in entries)


# --- shop.customers ---------------------------------------------------------------------


async def apply_customers(
    conn: Connection, events: Sequence[Incoming], *, programme: Programme
) -> list[Rejection]:
    """Keep birthdays and time zones, award sign-ups, and note who referred whom."""
    customers = [e for i in events if (e := i.event) is not None]
    known = await store.customer_profiles(conn, [e.data.customer_id for e in customers])
    seen: dict[str, CustomerSeen] = {}
    awards: list[Award] = []
    referrers: list[tuple[str, str, str, datetime]] = []
    for event in customers:
        data = event.data
        birthday, time_zone = known.get(data.customer_id, (None, None))
        birthday, time_zone = data.birthday or birthday, data.time_zone or time_zone
        known[data.customer_id] = (birthday, time_zone)
        seen[data.customer_id] = CustomerSeen(
            customer_id=data.customer_id,
            birthday=data.birthday,
            time_zone=data.time_zone,
            next_birthday_at=_first_birthday(birthday, time_zone, event.time)
            if data.birthday or data.time_zone
            else None,
        )
        if event.type == "customer.signed_up":
            signup = programme.actions.signup
            awards += _award(signup, "signup", f"signup:{data.customer_id}", event)
        if data.referrer_id is not None:
            referrers.append((data.customer_id, data.referrer_id, event.id, event.time))
    await store.record_customers(conn, list(seen.values()))
    await grant(conn, awards, programme)
    await reward_referrals(conn, await store.record_referrers(conn, referrers), programme)
    return []


def _first_birthday(birthday: date | None, time_zone: str | None, at: datetime) -> datetime | None:
    if birthday is None or time_zone is None:
        return None
    zone = ZoneInfo(time_zone)
    return next_birthday_at(birthday, zone, at.astimezone(zone).date())


# --- shop.engagement --------------------------------------------------------------------


async def apply_engagement(
    conn: Connection, events: Sequence[Incoming], *, programme: Programme
) -> list[Rejection]:
    """Reviews, social shares and newsletter subscriptions earn; a completed referral is
    rewarded once the referred customer's first order is paid."""
    actions = programme.actions
    awards: list[Award] = []
    referrers: list[tuple[str, str, str, datetime]] = []
    for incoming in events:
        event = incoming.event
        if event is None:
            continue
        data = event.data
        if event.type == "review.posted":
            awards += _award(actions.review, "review", f"review:{data.review_id}", event)
        elif event.type == "social.shared":
            awards += _award(actions.social_share, "social_share", f"share:{data.share_id}", event)
        elif event.type == "newsletter.subscribed":
            award_id = f"newsletter:{data.subscription_id}"
            awards += _award(actions.newsletter, "newsletter", award_id, event)
        elif event.type == "referral.completed":
            referrers.append((data.referred_id, data.referrer_id, event.id, event.time))
    await grant(conn, awards, programme)
    await reward_referrals(conn, await store.record_referrers(conn, referrers), programme)
    return []


# --- referrals ------------------------------------------------------------------------


async def referrals_after_orders(
    conn: Connection, order_ids: Sequence[str], *, programme: Programme
) -> None:
    """Called once paid orders are recorded: a referred customer's first paid order
    completes their referral."""
    await reward_referrals(conn, await store.record_first_orders(conn, order_ids), programme)


async def reward_referrals(
    conn: Connection, referrals: Sequence[Referral], programme: Programme
) -> None:
    """Both sides earn; the referrer within the referral limit, the referred customer always."""
    rule = programme.actions.referral
    if rule is None or not referrals:
        return
    awards = []
    for r in referrals:
        by_order = r.first_paid_at >= r.referral_at
        at = max(r.first_paid_at, r.referral_at)
        source = r.first_order_event_id if by_order else r.referral_event_id
        awards += [
            Award(
                f"referral:{r.referred_id}:referrer",
                "referral",
                r.referrer_id,
                rule.referrer_points,
                at,
                source,
                ("referral", rule.limit, rule.per),
            ),
            Award(
                f"referral:{r.referred_id}:referred",
                "referral",
                r.referred_id,
                rule.referred_points,
                at,
                source,
            ),
        ]
    await grant(conn, awards, programme)
    await store.mark_referrals_rewarded(conn, [r.referred_id for r in referrals])


# --- birthdays --------------------------------------------------------------------------


async def award_birthdays(
    conn: Connection, programme: Programme, *, now: datetime, limit: int
) -> int:
    """Award the birthdays begun by `now` (local midnight in each customer's zone), a chunk of
    customers claimed with SKIP LOCKED; `birthday:<customer>:<year>` is given at most once."""
    due = await store.take_birthdays(conn, now=now, limit=limit)
    points = programme.actions.birthday
    awards = []
    nexts = []
    for d in due:
        zone = ZoneInfo(d.time_zone)
        if points is not None:
            award_id = f"birthday:{d.customer_id}:{local_year(d.due_at, zone)}"
            awards.append(Award(award_id, "birthday", d.customer_id, points, d.due_at, None))
        nexts.append((d.customer_id, birthday_after(d.birthday, zone, d.due_at, now)))
    await grant(conn, awards, programme)
    await store.set_next_birthdays(conn, nexts)
    return len(due)
