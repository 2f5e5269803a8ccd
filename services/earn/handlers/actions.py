"""Points for actions other than buying: sign-up, review, social share, newsletter and
referral (both sides, once the referred customer's first order is paid), from shop.customers
and shop.engagement.

Each award has a deterministic id (a replay or a second event for the same review changes
nothing) and is decided once; an action's `limit` per `per` is held to a counter locked in the
awarding transaction, so concurrent batches cannot exceed it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog

from services.earn.adapters.customers import CustomerSeen
from services.earn.domain.actions import (
    Award,
    Referral,
    award_of,
    claims_of,
    decide_awards,
    next_birthday_at,
    referral_awards,
    undecided,
)
from services.earn.domain.ledger import NewEntry
from services.earn.programme_book import ProgrammeBook, UnknownShop
from services.earn.unit_of_work import UnitOfWork
from shared.consumer import Incoming, Rejection
from shared.events import CloudEvent
from shared.holders import Holders

log = structlog.get_logger(__name__)

_ALONE = Holders()  # no directory (tests, the bench): every shop holds its own accounts

# (holder, referred, referrer, event id, time), and the member shop where it happened
_Referrer = tuple[str, str, str, str, datetime]


async def apply_customers(
    uow: UnitOfWork,
    events: Sequence[Incoming],
    *,
    programmes: ProgrammeBook,
    holders: Holders | None = None,
) -> list[Rejection]:
    """Keep birthdays and time zones, award sign-ups, and note who referred whom; a customer
    of a coalition's member shop is the coalition account's customer."""
    rejections: list[Rejection] = []
    customers = _of_known_shops(events, programmes, holders or _ALONE, rejections)
    known = await uow.customers.profiles([(h, e.data.customer_id) for e, h in customers])
    seen: dict[tuple[str, str], CustomerSeen] = {}
    awards: list[Award] = []
    referrers: list[_Referrer] = []
    at_shops: dict[tuple[str, str], str] = {}
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
            awards += award_of(
                signup, "signup", f"signup:{data.customer_id}", shop=data.shop_id,
                holder=holder, customer_id=data.customer_id, at=event.time, event_id=event.id,
            )  # fmt: skip
        if data.referrer_id is not None:
            referrers.append((holder, data.customer_id, data.referrer_id, event.id, event.time))
            at_shops.setdefault(key, data.shop_id)
    await uow.customers.record(list(seen.values()))
    await _award_and_refer(uow, awards, referrers, programmes, at_shops)
    return rejections


async def apply_engagement(
    uow: UnitOfWork,
    events: Sequence[Incoming],
    *,
    programmes: ProgrammeBook,
    holders: Holders | None = None,
) -> list[Rejection]:
    """Reviews, social shares and newsletter subscriptions earn, into the holder's account; a
    completed referral is rewarded once the referred customer's first order is paid."""
    rejections: list[Rejection] = []
    awards: list[Award] = []
    referrers: list[_Referrer] = []
    at_shops: dict[tuple[str, str], str] = {}
    for event, holder in _of_known_shops(events, programmes, holders or _ALONE, rejections):
        data = event.data
        actions = programmes.at(holder, event.time).actions
        if event.type == "referral.completed":
            referrers.append((holder, data.referred_id, data.referrer_id, event.id, event.time))
            at_shops.setdefault((holder, data.referred_id), data.shop_id)
            continue
        if event.type == "review.posted":
            rule, action, award_id = actions.review, "review", f"review:{data.review_id}"
        elif event.type == "social.shared":
            rule, action, award_id = actions.social_share, "social_share", f"share:{data.share_id}"
        elif event.type == "newsletter.subscribed":
            rule, action = actions.newsletter, "newsletter"
            award_id = f"newsletter:{data.subscription_id}"
        else:
            continue
        awards += award_of(
            rule, action, award_id, shop=data.shop_id, holder=holder,
            customer_id=data.customer_id, at=event.time, event_id=event.id,
        )  # fmt: skip
    await _award_and_refer(uow, awards, referrers, programmes, at_shops)
    return rejections


async def _award_and_refer(
    uow: UnitOfWork,
    awards: Sequence[Award],
    referrers: Sequence[_Referrer],
    programmes: ProgrammeBook,
    at_shops: dict[tuple[str, str], str],
) -> None:
    """Grant the awards, note who referred whom and reward the referrals that completes, all
    in one write of the ledger."""
    entries = await grant_awards(uow, awards, programmes)
    completed = await uow.customers.record_referrers(referrers)
    entries += await reward_referrals(uow, completed, programmes, at_shops)
    await uow.ledger.write(entries)


async def grant_awards(
    uow: UnitOfWork, awards: Sequence[Award], programmes: ProgrammeBook
) -> list[NewEntry]:
    """Decide each award once, within its limit, under its holder's programme at its time, and
    record the decisions; the ledger entries of those granted, for the caller to write."""
    if not awards:
        return []
    decided = await uow.awards.decided([(a.shop_id, a.award_id) for a in awards])
    fresh = undecided(awards, decided)
    programme_of = [programmes.at(a.shop_id, a.occurred_at) for a in fresh]
    claims = claims_of(fresh, programme_of)
    used = await uow.awards.lock_counters([c.key for c in claims])
    decision = decide_awards(fresh, programme_of, claims, used)
    await uow.awards.save_counters(decision.counters)
    await uow.awards.record(decision.rows)
    if decision.refused:
        log.info("action_awards_over_limit", awards=decision.refused)
    return decision.entries


async def reward_referrals(
    uow: UnitOfWork,
    referrals: Sequence[Referral],
    programmes: ProgrammeBook,
    at_shops: dict[tuple[str, str], str] | None = None,
) -> list[NewEntry]:
    """Both sides of these completed referrals earn (see `referral_awards`), and the referrals
    are marked rewarded; the ledger entries, for the caller to write. No statement without."""
    if not referrals:
        return []
    entries = await grant_awards(
        uow, referral_awards(referrals, programmes.at, at_shops), programmes
    )
    await uow.customers.mark_rewarded([(r.shop_id, r.referred_id) for r in referrals])
    return entries


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
