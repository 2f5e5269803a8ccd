"""The earn programme of every shop, version by version: each event is applied with the
version in force at its time, so that a replay gives the points it gave the first time.

The book is held in memory and fed version by version (`add_version`); the shop `default`
is served by the programme file unless versions were given for it. Looking up a version is a
dictionary read and a bisection: no database read per event.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Callable
from datetime import datetime

from services.earn.programme import Programme
from shared.callers import DEFAULT_SHOP
from shared.errors import RejectedMessage


class UnknownShop(RejectedMessage):
    """An event or a request of a shop that has no earn programme."""

    def __init__(self, shop_id: str) -> None:
        super().__init__(f"shop {shop_id!r} has no earn programme", error_class="UnknownShop")
        self.shop_id = shop_id


class ProgrammeBook:
    """Per shop, the versions (effective from, programme) in time order."""

    def __init__(self, default: Callable[[], Programme]) -> None:
        """`default` gives the programme of the shop `default` while it has no versions (the
        file in force, which may be reloaded)."""
        self._default = default
        self._starts: dict[str, list[datetime]] = {}
        self._versions: dict[str, list[tuple[datetime, int, Programme]]] = {}
        self._added = 0

    @classmethod
    def fixed(cls, programme: Programme) -> ProgrammeBook:
        """One programme for the shop `default` (tests, tools)."""
        return cls(lambda: programme)

    def add_version(self, shop_id: str, effective_from: datetime, programme: Programme) -> None:
        """The programme of `shop_id` from `effective_from` on; versions may come in any order.
        Two versions effective at the same time: the one added last wins."""
        if effective_from.tzinfo is None:
            raise ValueError("effective_from must carry its time zone")
        self._added += 1
        versions = self._versions.setdefault(shop_id, [])
        insort(versions, (effective_from, self._added, programme), key=lambda v: v[:2])
        self._starts[shop_id] = [v[0] for v in versions]

    def shops(self) -> list[str]:
        """Every shop with a programme (the shop `default` always has one)."""
        return sorted({DEFAULT_SHOP, *self._versions})

    def knows(self, shop_id: str) -> bool:
        return shop_id == DEFAULT_SHOP or shop_id in self._versions

    def at(self, shop_id: str, when: datetime) -> Programme:
        """The version of `shop_id` in force at `when`; the earliest version also covers the
        times before it. Raises UnknownShop for a shop with no programme."""
        starts = self._starts.get(shop_id)
        if starts is None:
            if shop_id == DEFAULT_SHOP:
                return self._default()
            raise UnknownShop(shop_id)
        index = bisect_right(starts, when) - 1
        return self._versions[shop_id][max(index, 0)][2]
