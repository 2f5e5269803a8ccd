"""Money, points and times as a shop shows them: numbers in the shop's locale, times in its
time zone, words (month names) in the reader's language."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import (
    format_currency,
    format_decimal,
    format_percent,
    get_currency_precision,
)

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
# Until the shop's own settings are known (signed-out pages, a shop that does not answer).
DEFAULT_SHOP_LOCALE = "vi-VN"
DEFAULT_TIME_ZONE = "Asia/Ho_Chi_Minh"


def babel_locale(tag: str) -> Locale:
    """A BCP 47 tag as the shops API gives it ("vi-VN") or a POSIX one ("vi_VN")."""
    return Locale.parse(tag.replace("-", "_"))


@dataclass(frozen=True)
class Formats:
    """How one page writes numbers and times for one reader of one shop."""

    language: str = DEFAULT_LANGUAGE
    shop_locale: str = DEFAULT_SHOP_LOCALE
    time_zone: str = DEFAULT_TIME_ZONE

    def money(self, amount: Decimal | int | str, currency: str) -> str:
        """'1.250.000 ₫' at a Vietnamese shop, '$12.50' at an American one."""
        return format_currency(Decimal(amount), currency, locale=babel_locale(self.shop_locale))

    def minor_money(self, minor: int, currency: str) -> str:
        """An amount in minor units (cents; dong, which has none) as money."""
        return self.money(Decimal(minor).scaleb(-get_currency_precision(currency)), currency)

    def points(self, value: int) -> str:
        return format_decimal(value, locale=babel_locale(self.shop_locale))

    def percent(self, value: Decimal | str) -> str:
        """A percentage as analytics gives it ("92.40") in the shop's locale: '92,4 %'."""
        share = Decimal(value) / 100
        return format_percent(share, format="#,##0.#%", locale=babel_locale(self.shop_locale))

    def datetime(self, moment: dt.datetime) -> str:
        """The moment on the shop's wall clock; an aware time is required (naive is a bug)."""
        if moment.tzinfo is None:
            raise ValueError("a naive datetime has no place on a page: give it a zone")
        return format_datetime(
            moment,
            format="medium",
            tzinfo=ZoneInfo(self.time_zone),
            locale=babel_locale(self.language),
        )

    def date(self, day: dt.date | dt.datetime) -> str:
        if isinstance(day, dt.datetime):
            if day.tzinfo is None:
                raise ValueError("a naive datetime has no place on a page: give it a zone")
            day = day.astimezone(ZoneInfo(self.time_zone)).date()
        return format_date(day, format="medium", locale=babel_locale(self.language))
