"""Money, points and times on the console's pages: numbers in the shop's locale, times on the
shop's wall clock, month names in the reader's language."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.console.formats import Formats

NBSP, NARROW_NBSP = "\u00a0", "\u202f"
VN_SHOP_VI_READER = Formats("vi", "vi-VN", "Asia/Ho_Chi_Minh")
VN_SHOP_EN_READER = Formats("en", "vi-VN", "Asia/Ho_Chi_Minh")
US_SHOP_EN_READER = Formats("en", "en-US", "America/New_York")


def plain(text: str) -> str:
    return text.replace(NBSP, " ").replace(NARROW_NBSP, " ")


def test_dong_are_grouped_with_dots_and_have_no_minor_unit() -> None:
    assert plain(VN_SHOP_VI_READER.money(1_250_000, "VND")) == "1.250.000 ₫"
    assert plain(VN_SHOP_VI_READER.money("1250000.00", "VND")) == "1.250.000 ₫"


def test_the_shops_locale_writes_the_numbers_whatever_the_readers_language() -> None:
    assert VN_SHOP_EN_READER.money(Decimal(1_250_000), "VND") == VN_SHOP_VI_READER.money(
        Decimal(1_250_000), "VND"
    )
    assert VN_SHOP_EN_READER.points(12_345) == "12.345"


def test_dollars_have_cents_at_an_american_shop() -> None:
    assert US_SHOP_EN_READER.money(Decimal("12.5"), "USD") == "$12.50"
    assert US_SHOP_EN_READER.points(12_345) == "12,345"


def test_a_percentage_has_one_decimal_at_most_in_the_shops_locale() -> None:
    assert VN_SHOP_EN_READER.percent("92.40") == "92,4%"
    assert US_SHOP_EN_READER.percent(Decimal("92.46")) == "92.5%"
    assert US_SHOP_EN_READER.percent("100.00") == "100%"


def test_a_moment_is_shown_on_the_shops_wall_clock() -> None:
    moment = datetime(2026, 12, 7, 2, 30, tzinfo=UTC)
    assert plain(VN_SHOP_VI_READER.datetime(moment)) == "09:30:00 7 thg 12, 2026"
    assert plain(US_SHOP_EN_READER.datetime(moment)) == "Dec 6, 2026, 9:30:00 PM"


def test_the_same_moment_given_in_another_zone_is_shown_the_same() -> None:
    in_utc = datetime(2026, 12, 7, 2, 30, tzinfo=UTC)
    in_paris = in_utc.astimezone(timezone(timedelta(hours=1)))
    assert VN_SHOP_VI_READER.datetime(in_paris) == VN_SHOP_VI_READER.datetime(in_utc)


def test_the_day_of_a_moment_is_the_shops_day() -> None:
    late_evening_in_new_york = datetime(2026, 12, 7, 2, 30, tzinfo=UTC)
    assert US_SHOP_EN_READER.date(late_evening_in_new_york) == "Dec 6, 2026"
    assert VN_SHOP_VI_READER.date(late_evening_in_new_york) == "7 thg 12, 2026"
    assert VN_SHOP_EN_READER.date(date(2026, 12, 7)) == "Dec 7, 2026"


def test_a_time_without_a_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        VN_SHOP_VI_READER.datetime(datetime(2026, 12, 7, 2, 30))
