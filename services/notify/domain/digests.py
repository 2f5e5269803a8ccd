"""Points digests: one per customer per local day, whenever the customer's time zone is learnt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo


def digest_day(first_credit: datetime, zone: str | None) -> date:
    """The customer's local day of a credit; UTC until their time zone is known."""
    return first_credit.astimezone(ZoneInfo(zone or "UTC")).date()


def digest_key(customer_id: str, day: date) -> str:
    """The key of a customer's digest for a day (one row per channel adds `:<channel>`)."""
    return f"points_digest:{customer_id}:{day.isoformat()}"


@dataclass(frozen=True, slots=True)
class PendingDigest:
    """A digest not sent yet: its row, channel and the time of its first credit."""

    id: int
    dedup_key: str
    shop_id: str
    customer_id: str
    channel: str
    first_credit: datetime


@dataclass(frozen=True, slots=True)
class Regrouped:
    """Pending digests of a shop that belong under `key` (the local day `day`), in the order
    planned."""

    shop_id: str
    key: str
    day: date
    members: tuple[PendingDigest, ...]


def regroup(
    pending: Sequence[PendingDigest], zones: Mapping[tuple[str, str], str]
) -> list[Regrouped]:
    """Key pending digests again by the local day of their first credit in the customer's
    time zone, as now known (`zones` by shop and customer); only the groups that change (a new
    key, or several rows in one).

    Credits that arrived before the customer's sign-up were keyed by their UTC day: once the
    zone is known they join the digest of the customer's own day, so that day has one."""
    groups: dict[tuple[str, str], list[PendingDigest]] = {}
    days: dict[tuple[str, str], date] = {}
    for digest in pending:
        day = digest_day(digest.first_credit, zones.get((digest.shop_id, digest.customer_id)))
        key = (digest.shop_id, f"{digest_key(digest.customer_id, day)}:{digest.channel}")
        groups.setdefault(key, []).append(digest)
        days[key] = day
    return [
        Regrouped(shop, key, days[shop, key], tuple(sorted(members, key=lambda d: d.id)))
        for (shop, key), members in groups.items()
        if len(members) > 1 or members[0].dedup_key != key
    ]
