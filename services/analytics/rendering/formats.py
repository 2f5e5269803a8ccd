"""How figures read, the same in the terminal and on the page."""

from __future__ import annotations

from decimal import Decimal


def rate(value: Decimal | None) -> str:
    return "n/a" if value is None else f"{value:.2f}%"


def amount(value: Decimal | int | None, places: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{places}f}"


def money(value: Decimal | None, currency: str) -> str:
    if value is None:
        return "n/a"
    exponent = value.as_tuple().exponent
    places = max(-exponent, 0) if isinstance(exponent, int) else 0
    return f"{value:,.{places}f} {currency}"
