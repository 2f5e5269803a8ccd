"""Each shop's tier programme in force at a time, and programmes given as TOML text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tiering_builders import programme

from services.tiering.programme import EXAMPLE, ProgrammeError, load_programme, programme_from_toml
from services.tiering.shops import TierProgrammes, UnknownShop

JAN = datetime(2026, 1, 1, tzinfo=UTC)
USD_TIERS: list[dict[str, Any]] = [
    {"code": "basic", "name": "Basic"},
    {"code": "plus", "name": "Plus", "enter": {"USD": "500"}},
]


def test_the_version_in_force_is_the_latest_that_started_at_or_before_the_time() -> None:
    first, second = programme(), programme(warn_days=10)
    shops = TierProgrammes()
    shops.add_version("vn", JAN + timedelta(days=30), second)
    shops.add_version("vn", JAN, first)

    assert shops.at("vn", JAN) is first
    assert shops.at("vn", JAN + timedelta(days=30) - timedelta(microseconds=1)) is first
    assert shops.at("vn", JAN + timedelta(days=30)) is second
    assert shops.at("vn", JAN + timedelta(days=400)) is second


def test_the_earliest_version_also_covers_times_before_it() -> None:
    first = programme()
    shops = TierProgrammes()
    shops.add_version("vn", JAN, first)

    assert shops.at("vn", JAN - timedelta(days=3650)) is first


def test_shops_keep_their_own_programmes() -> None:
    vnd, usd = programme(), programme(zone="America/New_York", tiers=USD_TIERS)
    shops = TierProgrammes()
    shops.add_version("vn", JAN, vnd)
    shops.add_version("us", JAN, usd)

    assert shops.at("vn", JAN).entry.code == "member"
    assert shops.at("us", JAN).entry.code == "basic"
    assert shops.shops == ["us", "vn"]


def test_a_shop_without_a_programme_is_refused_as_unknown_shop() -> None:
    shops = TierProgrammes()
    shops.add_version("vn", JAN, programme())

    with pytest.raises(UnknownShop) as refused:
        shops.at("elsewhere", JAN)

    assert refused.value.error_class == "UnknownShop"
    assert "elsewhere" in str(refused.value)
    assert not shops.knows("elsewhere")
    assert not shops.knows("default")


def test_shop_default_is_served_by_the_file_until_versions_are_given_for_it() -> None:
    from_file, published = programme(), programme(warn_days=5)
    shops = TierProgrammes(from_file)

    assert shops.at("default", JAN) is from_file
    assert shops.shops == ["default"]
    shops.add_version("default", JAN, published)
    assert shops.at("default", JAN - timedelta(days=1)) is published


def test_a_version_at_the_same_time_replaces_the_one_given_before() -> None:
    first, again = programme(), programme(warn_days=7)
    shops = TierProgrammes()
    shops.add_version("vn", JAN, first)
    shops.add_version("vn", JAN, again)

    assert shops.at("vn", JAN + timedelta(days=1)) is again


def test_toml_text_gives_the_programme_the_file_gives() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")

    parsed = programme_from_toml(text, source="shop vn version 1")

    assert parsed == load_programme(EXAMPLE)


def test_toml_text_is_checked_with_the_file_checks_naming_the_setting() -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'keep = { VND = "12000000" }', 'keep = { VND = "99000000" }'
    )

    with pytest.raises(ProgrammeError, match=r"tiers\[2\]\.keep\.VND: must not be more than enter"):
        programme_from_toml(text, source="shop vn version 2")


def test_toml_text_that_is_not_toml_is_refused_naming_its_source() -> None:
    with pytest.raises(ProgrammeError, match="shop vn version 3: not valid TOML"):
        programme_from_toml("tiers = [", source="shop vn version 3")
