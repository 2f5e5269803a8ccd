"""Every shop's earn programme, version by version: the version in force at an event's time,
the earliest covering earlier times, the file for the shop `default`, and programmes given as
TOML text (as published versions arrive) checked like the file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from services.earn.programme import Programme, ProgrammeError, load_programme, programme_from_text
from services.earn.programme_book import ProgrammeBook, UnknownShop

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def per_amount(amount: int) -> Programme:
    return programme_from_text(f"[currencies.VND]\nper_amount = {amount}\n")


def test_an_event_gets_the_version_in_force_at_its_time() -> None:
    book = ProgrammeBook.fixed(per_amount(1))
    book.add_version("vn-fashion", T0, per_amount(10_000))
    book.add_version("vn-fashion", T0 + timedelta(days=30), per_amount(5_000))

    def rate(at: datetime) -> Decimal:
        return book.at("vn-fashion", at).currencies["VND"].per_amount

    assert rate(T0) == 10_000
    assert rate(T0 + timedelta(days=30) - timedelta(microseconds=1)) == 10_000
    assert rate(T0 + timedelta(days=30)) == 5_000
    assert rate(T0 + timedelta(days=400)) == 5_000


def test_the_earliest_version_also_covers_earlier_times() -> None:
    book = ProgrammeBook.fixed(per_amount(1))
    book.add_version("vn-fashion", T0, per_amount(10_000))

    assert book.at("vn-fashion", T0 - timedelta(days=365)).currencies["VND"].per_amount == 10_000


def test_versions_added_out_of_order_are_kept_in_time_order() -> None:
    book = ProgrammeBook.fixed(per_amount(1))
    book.add_version("s", T0 + timedelta(days=2), per_amount(300))
    book.add_version("s", T0, per_amount(100))
    book.add_version("s", T0 + timedelta(days=1), per_amount(200))

    rates = [book.at("s", T0 + timedelta(days=d)).currencies["VND"].per_amount for d in range(3)]
    assert rates == [100, 200, 300]


def test_a_version_at_the_same_time_as_another_takes_over_from_it() -> None:
    book = ProgrammeBook.fixed(per_amount(1))
    book.add_version("s", T0, per_amount(100))
    book.add_version("s", T0, per_amount(200))

    assert book.at("s", T0).currencies["VND"].per_amount == 200


def test_a_shop_without_a_programme_is_refused_as_unknown() -> None:
    book = ProgrammeBook.fixed(per_amount(1))
    book.add_version("vn-fashion", T0, per_amount(10_000))

    with pytest.raises(UnknownShop) as refused:
        book.at("us-store", T0)

    assert refused.value.error_class == "UnknownShop"
    assert "us-store" in str(refused.value)
    assert not book.knows("us-store")
    assert book.shops() == ["default", "vn-fashion"]


def test_the_default_shop_runs_the_file_until_versions_are_given_for_it() -> None:
    current = [per_amount(1)]
    book = ProgrammeBook(lambda: current[0])

    assert book.at("default", T0).currencies["VND"].per_amount == 1
    current[0] = per_amount(2)  # the file was reloaded
    assert book.at("default", T0).currencies["VND"].per_amount == 2

    book.add_version("default", T0, per_amount(3))
    assert book.at("default", T0 - timedelta(days=1)).currencies["VND"].per_amount == 3


def test_a_version_needs_a_time_with_its_zone() -> None:
    book = ProgrammeBook.fixed(per_amount(1))

    with pytest.raises(ValueError, match="time zone"):
        book.add_version("s", datetime(2026, 12, 1), per_amount(2))


def test_a_programme_as_text_is_the_file_s_programme(tmp_path: Path) -> None:
    text = (
        'time_zone = "Asia/Ho_Chi_Minh"\n'
        "[currencies.VND]\nper_amount = 10000\n"
        "[cashback.percent]\nVND = 2\n"
    )
    (tmp_path / "shop.toml").write_text(text, encoding="utf-8")

    assert programme_from_text(text) == load_programme(tmp_path / "shop.toml")
    assert programme_from_text(text).cashback is not None


def test_a_bad_programme_as_text_is_refused_naming_the_setting_and_the_version() -> None:
    with pytest.raises(ProgrammeError) as refused:
        programme_from_text("[currencies.VND]\nper_amount = -1\n", source="vn-fashion v3")

    assert "earn programme vn-fashion v3 is not valid" in str(refused.value)
    assert "currencies.VND.per_amount" in str(refused.value)
    with pytest.raises(ProgrammeError, match="vn-fashion v4: not valid TOML"):
        programme_from_text("[currencies.VND\n", source="vn-fashion v4")
