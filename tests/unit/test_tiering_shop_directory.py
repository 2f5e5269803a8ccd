"""Tiering's shop directory: published tier documents become programme versions (a refused
one is skipped). (That nothing is applied before the catch-up: ShopDirectory.attach, in
test_shop_directory_wiring.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.tiering.bootstrap import shop_directory
from services.tiering.programme import EXAMPLE
from services.tiering.shops import TierProgrammes, UnknownShop

JAN = datetime(2026, 1, 1, tzinfo=UTC)


def version(shop: str, number: int, starts: datetime, toml: str) -> dict[str, Any]:
    return {
        "shop_id": shop,
        "kind": "tiers",
        "version": number,
        "effective_from": starts,
        "toml": toml,
    }


def test_each_published_version_is_a_version_of_the_shop_and_a_refused_one_is_skipped() -> None:
    programmes = TierProgrammes()
    directory = shop_directory(programmes)
    ladder = EXAMPLE.read_text(encoding="utf-8")
    later = ladder.replace('enter = { VND = "5000000" }', 'enter = { VND = "4000000" }')
    assert later != ladder

    directory.programme_known(version("vn", 1, JAN, ladder))
    directory.programme_known(version("vn", 2, JAN + timedelta(days=30), later))
    directory.programme_known(version("vn", 3, JAN + timedelta(days=60), "basis = 'nothing'"))
    directory.programme_known(version("us", 1, JAN, "not toml ["))

    first, second = programmes.at("vn", JAN), programmes.at("vn", JAN + timedelta(days=90))
    assert first is not second  # version 3 was refused: version 2 stays in force
    assert programmes.at("vn", JAN - timedelta(days=1)) is first
    assert programmes.shops == ["vn"]
    with pytest.raises(UnknownShop):
        programmes.at("us", JAN)
