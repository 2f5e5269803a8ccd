"""Points for actions: which awards are given, limit periods in the shop's time zone,
birthdays in the customer's."""

from __future__ import annotations

import calendar
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from services.earn.domain.ledger import NewEntry, award_entry
from services.earn.programme import ActionRule, Programme
from shared.holders import shop_scoped

LIFETIME = "lifetime"

Per = Literal["day", "week", "month", "year", "lifetime"]


@dataclass(frozen=True, slots=True)
class Award:
    """Points for one action, unless its limit (counter, limit, per) is reached."""

    shop_id: str  # the holder of the account it earns into
    award_id: str  # unique in the shop; also the id of its ledger entry (see shop_scoped)
    action: str
    customer_id: str
    points: int
    occurred_at: datetime
    source_event_id: str | None
    limit: tuple[str, int, Per] | None = None
    at_shop: str | None = None  # the member shop, on a coalition's account


@dataclass(frozen=True, slots=True)
class AwardRow:
    """An award decided: granted with its points, or refused by its limit with 0."""

    shop_id: str
    award_id: str
    action: str
    customer_id: str
    points: int  # 0 when its limit refused it
    occurred_at: datetime
    source_event_id: str | None


@dataclass(frozen=True, slots=True)
class Referral:
    """A referral whose two halves (the referrer, the first paid order) are both known, on
    the account of its holder (`shop_id`: the shop, or its coalition)."""

    shop_id: str
    referred_id: str
    referrer_id: str
    referral_event_id: str
    referral_at: datetime
    first_order_id: str
    first_order_event_id: str
    first_paid_at: datetime


def award_of(
    rule: ActionRule | None,
    action: str,
    award_id: str,
    *,
    shop: str,
    holder: str,
    customer_id: str,
    at: datetime,
    event_id: str,
) -> list[Award]:
    """The award of an action at `shop`, to its holder's account: scoped by the holder, so an
    action once per customer (a sign-up) earns once per coalition account, not per member."""
    if rule is None:
        return []
    scoped = shop_scoped(holder, award_id)
    at_shop = None if holder == shop else shop
    limit = (action, rule.limit, rule.per)
    return [Award(holder, scoped, action, customer_id, rule.points, at, event_id, limit, at_shop)]


def referral_awards(
    referrals: Sequence[Referral],
    programme_at: Callable[[str, datetime], Programme],
    at_shops: dict[tuple[str, str], str] | None = None,
) -> list[Award]:
    """Both sides of completed referrals, under the holder's programme when the referral
    completed (the later of its two halves): the referrer within the referral limit, the
    referred customer always. `at_shops` names the member shop where a referral of a
    coalition's account completed, by (holder, referred customer)."""
    awards = []
    for r in referrals:
        by_order = r.first_paid_at >= r.referral_at
        at = max(r.first_paid_at, r.referral_at)
        rule = programme_at(r.shop_id, at).actions.referral
        if rule is None:
            continue
        source = r.first_order_event_id if by_order else r.referral_event_id
        member = (at_shops or {}).get((r.shop_id, r.referred_id))
        at_shop = None if member in (None, r.shop_id) else member
        referrer = shop_scoped(r.shop_id, f"referral:{r.referred_id}:referrer")
        referred = shop_scoped(r.shop_id, f"referral:{r.referred_id}:referred")
        limit: tuple[str, int, Per] = ("referral", rule.limit, rule.per)
        awards += [
            Award(r.shop_id, referrer, "referral", r.referrer_id, rule.referrer_points, at,
                  source, limit, at_shop),
            Award(r.shop_id, referred, "referral", r.referred_id, rule.referred_points, at,
                  source, None, at_shop),
        ]  # fmt: skip
    return awards


def undecided(awards: Sequence[Award], decided: set[tuple[str, str]]) -> list[Award]:
    """The awards not decided before, each once (a batch may name one twice)."""
    seen = set(decided)
    fresh = []
    for award in awards:
        key = (award.shop_id, award.award_id)
        if key not in seen:
            seen.add(key)
            fresh.append(award)
    return fresh


def claims_of(awards: Sequence[Award], programmes: Sequence[Programme]) -> list[Claim]:
    """The limit counters the limited awards ask for, in award order (`programmes`: each
    award's programme at its time, whose zone dates its period)."""
    return [
        Claim(
            (a.shop_id, a.limit[0], a.customer_id, period_of(a.limit[2], a.occurred_at, p.zone)),
            a.limit[1],
        )
        for a, p in zip(awards, programmes, strict=True)
        if a.limit is not None
    ]


@dataclass(slots=True)
class AwardsDecided:
    rows: list[AwardRow] = field(default_factory=list)  # every award, granted or refused
    counters: dict[CounterKey, int] = field(default_factory=dict)  # those that moved: new counts
    entries: list[NewEntry] = field(default_factory=list)  # the points granted
    refused: int = 0


def decide_awards(
    awards: Sequence[Award],
    programmes: Sequence[Programme],
    claims: Sequence[Claim],
    used: dict[CounterKey, int],
) -> AwardsDecided:
    """Grant each award within its limit (`claims` from `claims_of`, `used` their counters
    before): the rows to record, the counters to save and the ledger entries to write."""
    verdicts = iter(within_limits(claims, used))
    counts = dict(used)
    decided = AwardsDecided()
    for claim in claims:
        counts.setdefault(claim.key, 0)
    claimed = iter(claims)
    for a, programme in zip(awards, programmes, strict=True):
        granted = True
        if a.limit is not None:
            granted = next(verdicts)
            counts[next(claimed).key] += granted
        points = a.points if granted else 0
        decided.refused += not granted
        decided.rows.append(
            AwardRow(a.shop_id, a.award_id, a.action, a.customer_id, points, a.occurred_at,
                     a.source_event_id)
        )  # fmt: skip
        if points > 0:
            decided.entries.append(
                award_entry(programme, award_id=a.award_id, shop_id=a.shop_id,
                            customer_id=a.customer_id, action=a.action, points=points,
                            source_event_id=a.source_event_id, at=a.occurred_at,
                            at_shop=a.at_shop)
            )  # fmt: skip
    decided.counters = {k: v for k, v in counts.items() if v != used.get(k, 0)}
    return decided


def period_of(per: str, at: datetime, zone: ZoneInfo) -> str:
    """The limit period that `at` falls in, named by its local start: 'day:2026-12-02',
    'week:2026-11-30' (ISO weeks start on Monday), 'month:2026-12', 'year:2026', 'lifetime'."""
    local = at.astimezone(zone).date()
    if per == "day":
        return f"day:{local.isoformat()}"
    if per == "week":
        return f"week:{(local - timedelta(days=local.weekday())).isoformat()}"
    if per == "month":
        return f"month:{local.year:04d}-{local.month:02d}"
    if per == "year":
        return f"year:{local.year:04d}"
    return LIFETIME


CounterKey = tuple[str, ...]  # (shop,) action, customer, period


@dataclass(frozen=True, slots=True)
class Claim:
    """One award asking for a place within its limit: `key` names the counter."""

    key: CounterKey
    limit: int


def within_limits(claims: Sequence[Claim], used: dict[CounterKey, int]) -> list[bool]:
    """Which claims are granted, in order: each counter grants until it reaches its limit.
    `used` is what each counter had granted before."""
    counts = dict(used)
    granted = []
    for claim in claims:
        count = counts.get(claim.key, 0)
        ok = count < claim.limit
        granted.append(ok)
        if ok:
            counts[claim.key] = count + 1
    return granted


def birthday_in(year: int, birthday: date) -> date:
    """The day a birthday is celebrated in `year`: 29 February is the 28th in other years."""
    if birthday.month == 2 and birthday.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def next_birthday_at(birthday: date, zone: ZoneInfo, on_or_after: date) -> datetime:
    """The start (local midnight, as an instant) of the first birthday on or after a local
    date, in the customer's time zone."""
    day = birthday_in(on_or_after.year, birthday)
    if day < on_or_after:
        day = birthday_in(on_or_after.year + 1, birthday)
    return _local_midnight(day, zone)


def birthday_after(birthday: date, zone: ZoneInfo, celebrated: datetime, now: datetime) -> datetime:
    """The next birthday to award once the one starting at `celebrated` is done: next year's,
    or, when the awarding runs late by more than a year, the first one from today on."""
    year = celebrated.astimezone(zone).year + 1
    today = now.astimezone(zone).date()
    return next_birthday_at(birthday, zone, max(date(year, 1, 1), today))


def local_year(at: datetime, zone: ZoneInfo) -> int:
    return at.astimezone(zone).year


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    # Where clocks skip midnight (a DST change at 00:00), this instant is when the day begins.
    return datetime.combine(day, time(0), tzinfo=zone)
