"""Small builders for the tiering unit tests: programmes, activity, instants in a shop's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from services.tiering.domain.activity import Activity
from services.tiering.domain.rules import Programme
from services.tiering.domain.state import TierState
from services.tiering.programme import parse_programme

VND_TIERS: list[dict[str, Any]] = [
    {"code": "member", "name": "Member"},
    {
        "code": "silver",
        "name": "Silver",
        "multiplier": "1.25",
        "enter": {"VND": "5000000"},
        "keep": {"VND": "4000000"},
    },
    {
        "code": "gold",
        "name": "Gold",
        "multiplier": "1.5",
        "enter": {"VND": "15000000"},
        "keep": {"VND": "12000000"},
    },
    {
        "code": "platinum",
        "name": "Platinum",
        "multiplier": "2",
        "enter": {"VND": "40000000"},
        "keep": {"VND": "32000000"},
    },
    {"code": "black", "name": "Black", "multiplier": "3", "invite_only": True},
]


def programme(
    *,
    zone: str = "Asia/Ho_Chi_Minh",
    window: dict[str, Any] | None = None,
    downgrade: dict[str, Any] | None = None,
    tiers: list[dict[str, Any]] | None = None,
    warn_days: int = 30,
    basis: str = "spend",
) -> Programme:
    return parse_programme(
        {
            "time_zone": zone,
            "basis": basis,
            "warn_days": warn_days,
            "window": window or {"kind": "rolling", "days": 365},
            "downgrade": downgrade or {"mode": "end_of_period"},
            "tiers": tiers or VND_TIERS,
        }
    )


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An instant given as local wall-clock time in `zone`, returned in UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def activity(*days: tuple[date, str], unit: str = "VND") -> Activity:
    result = Activity(since=date(2000, 1, 1))
    for day, amount in days:
        result.add(unit, day, Decimal(amount))
    return result


def fresh(customer_id: str, prog: Programme, shop_id: str = "default") -> TierState:
    return TierState.new(shop_id, customer_id, prog)
