"""Who holds a shop's accounts at an event's time: the shop itself, or its coalition.

A coalition's member shops share one account per customer, keyed by the coalition id. A shop's
memberships are versions, each `(coalition_id or None, effective_from)`, announced on
loyalty.shops and applied by event time, so a replay finds the same holder as the live run.
Pure: no I/O; every service's ShopDirectory fills one from its tables and the topic.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime

from shared.callers import DEFAULT_SHOP
from shared.events.fields import bounded_id


@dataclass(frozen=True, slots=True)
class Membership:
    """One version of a shop's membership: in `coalition_id` (None: standing alone) from
    `effective_from` until the next version starts."""

    shop_id: str
    version: int
    coalition_id: str | None
    effective_from: datetime


@dataclass(slots=True)
class Holders:
    """Every shop's membership versions; empty, it maps every shop to itself."""

    # shop -> its versions, ordered by (effective_from, version)
    _versions: dict[str, list[Membership]] = field(default_factory=dict)
    _coalitions: set[str] = field(default_factory=set)

    def add(self, membership: Membership) -> bool:
        """Know one version, in any order; False when it was known already."""
        versions = self._versions.setdefault(membership.shop_id, [])
        if any(v.version == membership.version for v in versions):
            return False
        bisect.insort(versions, membership, key=_order)
        if membership.coalition_id is not None:
            self._coalitions.add(membership.coalition_id)
        return True

    def at(self, shop_id: str, when: datetime) -> str:
        """The holder of `shop_id`'s accounts at `when`: its coalition while it is a member,
        else the shop itself (before its first version too); a coalition holds its own."""
        versions = self._versions.get(shop_id)
        if versions is None:
            return shop_id
        current = bisect.bisect_right(versions, when, key=_start) - 1
        if current < 0:
            return shop_id
        return versions[current].coalition_id or shop_id

    def is_coalition(self, shop_id: str) -> bool:
        """Whether some membership version names `shop_id` as a coalition."""
        return shop_id in self._coalitions

    def members(self, coalition_id: str, when: datetime) -> list[str]:
        """The shops that are members of `coalition_id` at `when`, sorted."""
        return sorted(
            shop
            for shop in self._versions
            if shop != coalition_id and self.at(shop, when) == coalition_id
        )

    def coalitions_at(self, when: datetime) -> dict[str, str]:
        """Each shop that is a member of a coalition at `when`, with that coalition."""
        return {shop: holder for shop in self._versions if (holder := self.at(shop, when)) != shop}

    def member_now(self, shop_id: str, now: datetime) -> bool:
        """Whether `shop_id` is a member of a coalition at `now`."""
        return self.at(shop_id, now) != shop_id

    def versions(self, shop_id: str) -> list[Membership]:
        """The versions of `shop_id` known, by start."""
        return list(self._versions.get(shop_id, ()))


def _order(membership: Membership) -> tuple[datetime, int]:
    return (membership.effective_from, membership.version)


def _start(membership: Membership) -> datetime:
    return membership.effective_from


def shop_scoped(shop_id: str, local_id: str) -> str:
    """A globally unique id (of an entry or an event) from one unique within a shop (a
    customer's sign-up, an order's membership): as it is for the shop `default`, whose ids
    predate shops, else prefixed by the shop, its length first so that no two shops' ids can
    read alike (shop ids may contain any printable character)."""
    if shop_id == DEFAULT_SHOP:
        return local_id
    return bounded_id(f"shop:{len(shop_id)}:{shop_id}:{local_id}")
