"""The tier programme each shop has in force at a time, kept in memory.

Versions are added as they are published (the consumer of `loyalty.shops` feeds them); each
has an effective-from time, and the earliest of a shop also covers the times before it. The
shop `default` is served by the programme file until a version is given for it.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime

from services.tiering.domain.rules import Programme
from shared.callers import DEFAULT_SHOP
from shared.errors import RejectedMessage


class UnknownShop(RejectedMessage):
    """An event or request of a shop that has no tier programme: dead-lettered, never retried."""

    def __init__(self, shop_id: str) -> None:
        super().__init__(f"shop {shop_id!r} has no tier programme", error_class="UnknownShop")
        self.shop_id = shop_id


@dataclass
class _Versions:
    starts: list[datetime] = field(default_factory=list)
    programmes: list[Programme] = field(default_factory=list)


class TierProgrammes:
    """Per shop, the programme versions by effective-from time; `at` finds the one in force."""

    def __init__(self, default: Programme | None = None) -> None:
        self._default = default
        self._shops: dict[str, _Versions] = {}

    def add_version(self, shop_id: str, effective_from: datetime, programme: Programme) -> None:
        """Add (or, at the same effective-from time, replace) a version of a shop's programme."""
        versions = self._shops.setdefault(shop_id, _Versions())
        index = bisect_right(versions.starts, effective_from)
        if index and versions.starts[index - 1] == effective_from:
            versions.programmes[index - 1] = programme
            return
        versions.starts.insert(index, effective_from)
        versions.programmes.insert(index, programme)

    def at(self, shop_id: str, when: datetime) -> Programme:
        """The programme in force at the shop at `when`; UnknownShop when it has none."""
        versions = self._shops.get(shop_id)
        if versions is None:
            if shop_id == DEFAULT_SHOP and self._default is not None:
                return self._default
            raise UnknownShop(shop_id)
        return versions.programmes[max(bisect_right(versions.starts, when) - 1, 0)]

    def knows(self, shop_id: str) -> bool:
        return shop_id in self._shops or (shop_id == DEFAULT_SHOP and self._default is not None)

    @property
    def shops(self) -> list[str]:
        """Every shop with a programme, sorted."""
        known = set(self._shops)
        if self._default is not None:
            known.add(DEFAULT_SHOP)
        return sorted(known)
