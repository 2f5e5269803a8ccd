"""The tiering programme file (TOML): its schema, its checks, and the rules it becomes.

Every problem is reported with the setting it is about, such as
`tiers[2].keep.VND: must not be more than enter (15000000)`.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from services.tiering.domain.rules import (
    POINTS,
    Basis,
    Downgrade,
    DowngradeMode,
    Programme,
    Steps,
    Tier,
    Window,
    WindowKind,
)
from shared.events import CURRENCY_MINOR_UNITS, fits_minor_units
from shared.programme_files import ProgrammeError, read_toml, validate

__all__ = ["EXAMPLE", "ProgrammeError", "load_programme", "parse_programme", "programme_from_toml"]

EXAMPLE: Final = Path(__file__).with_name("programme.example.toml")


def _points_as_table(value: object) -> object:
    # `enter = 1000` is how a points threshold is written; spend thresholds are tables.
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal | str):
        return {POINTS: value}
    return value


Amount = Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=30)]
Thresholds = Annotated[dict[str, Amount], BeforeValidator(_points_as_table)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TierConfig(_Section):
    code: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str = Field(min_length=1, max_length=64)
    benefits: list[Annotated[str, Field(min_length=1, max_length=1000)]] = Field(
        default_factory=list, max_length=50
    )
    multiplier: Decimal = Field(default=Decimal(1), ge=1, le=100, allow_inf_nan=False)
    invite_only: bool = False
    enter: Thresholds | None = None
    keep: Thresholds | None = None


class WindowConfig(_Section):
    kind: Literal["rolling", "calendar_year", "lifetime"]
    days: int | None = Field(default=None, ge=1, le=3660)


class DowngradeConfig(_Section):
    mode: Literal["never", "end_of_period", "grace"]
    steps: Literal["one", "to_qualifying"] = "one"
    grace_days: int | None = Field(default=None, ge=1, le=3660)


class ProgrammeConfig(_Section):
    time_zone: str
    basis: Literal["spend", "points"]
    window: WindowConfig
    downgrade: DowngradeConfig
    warn_days: int = Field(default=30, ge=0, le=365)
    tiers: list[TierConfig] = Field(min_length=2, max_length=20)


def load_programme(path: Path | None = None) -> Programme:
    """Read, check and convert the programme file; the shipped example when no path is given."""
    source = path or EXAMPLE
    return parse_programme(read_toml(source), source=str(source))


def programme_from_toml(text: str, *, source: str = "programme") -> Programme:
    """A programme given as TOML text (a published version), checked as a file is."""
    try:
        raw = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ProgrammeError(f"{source}: not valid TOML: {exc}") from None
    return parse_programme(raw, source=source)


def parse_programme(raw: dict[str, Any], *, source: str = "programme") -> Programme:
    what = f"tiering programme {source}"
    return to_programme(validate(ProgrammeConfig, raw, what=what, checks=problems_of))


def problems_of(config: ProgrammeConfig) -> list[str]:
    """The rules that span several settings; each problem names the setting."""
    problems = _settings_problems(config)
    seen: dict[str, int] = {}
    for index, tier in enumerate(config.tiers):
        if tier.code in seen:
            problems.append(f"tiers[{index}].code: {tier.code!r} is also tiers[{seen[tier.code]}]")
        seen.setdefault(tier.code, index)
        problems += _tier_problems(config, index, tier)
    problems += _ladder_problems(config)
    return problems


def _settings_problems(config: ProgrammeConfig) -> list[str]:
    problems = []
    try:
        ZoneInfo(config.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"time_zone: {config.time_zone!r} is not an IANA time zone name")
    window, downgrade = config.window, config.downgrade
    if window.kind == "rolling" and window.days is None:
        problems.append("window.days: required when window.kind is 'rolling'")
    if window.kind != "rolling" and window.days is not None:
        problems.append(f"window.days: only for window.kind 'rolling', not {window.kind!r}")
    if downgrade.mode == "grace" and downgrade.grace_days is None:
        problems.append("downgrade.grace_days: required when downgrade.mode is 'grace'")
    if downgrade.mode != "grace" and downgrade.grace_days is not None:
        problems.append(f"downgrade.grace_days: only for mode 'grace', not {downgrade.mode!r}")
    if downgrade.mode == "end_of_period" and window.kind == "lifetime":
        problems.append(
            "downgrade.mode: 'end_of_period' needs a window with periods ('rolling' or "
            "'calendar_year'); use 'never' or 'grace' with a lifetime window"
        )
    return problems


def _tier_problems(config: ProgrammeConfig, index: int, tier: TierConfig) -> list[str]:
    at = f"tiers[{index}]"
    if index == 0:
        problems = []
        if tier.invite_only or tier.enter is not None or tier.keep is not None:
            problems.append(f"{at}: the first tier is where every customer starts: no thresholds")
        if tier.multiplier != 1:
            problems.append(f"{at}.multiplier: the first tier's multiplier must be 1")
        return problems
    if tier.invite_only:
        if tier.enter is not None or tier.keep is not None:
            return [f"{at}.enter: an invite-only tier has no thresholds"]
        return []
    if tier.enter is None:
        return [f"{at}.enter: required (or set invite_only = true)"]
    problems = _amount_problems(config, f"{at}.enter", tier.enter)
    for unit, amount in (tier.keep or {}).items():
        if unit not in tier.enter:
            problems.append(f"{at}.keep.{unit}: there is no enter threshold in {unit}")
        elif amount > tier.enter[unit]:
            problems.append(f"{at}.keep.{unit}: must not be more than enter ({tier.enter[unit]})")
    if tier.keep is not None:
        problems += _amount_problems(config, f"{at}.keep", tier.keep)
    return problems


def _amount_problems(config: ProgrammeConfig, at: str, amounts: dict[str, Decimal]) -> list[str]:
    if config.basis == "points":
        if set(amounts) != {POINTS}:
            return [f"{at}: with basis 'points' write a whole number of points, as in enter = 1000"]
        if amounts[POINTS] != amounts[POINTS].to_integral_value():
            return [f"{at}: must be a whole number of points"]
        return []
    problems = []
    for unit, amount in amounts.items():
        if unit not in CURRENCY_MINOR_UNITS:
            problems.append(f"{at}.{unit}: not an ISO 4217 currency code (basis is 'spend')")
        elif not fits_minor_units(amount, unit):
            problems.append(f"{at}.{unit}: has more decimal places than {unit} allows")
    return problems


def _ladder_problems(config: ProgrammeConfig) -> list[str]:
    ladder = [(i, t) for i, t in enumerate(config.tiers) if i > 0 and t.enter and not t.invite_only]
    if not ladder:
        return ["tiers: at least one tier after the first needs enter thresholds"]
    problems = []
    low_index, low = ladder[0]
    units = sorted(low.enter or {})
    for index, tier in ladder[1:]:
        enter, below = tier.enter or {}, low.enter or {}
        if sorted(enter) != units:
            problems.append(
                f"tiers[{index}].enter: names {', '.join(sorted(enter))} but "
                f"tiers[{ladder[0][0]}] names {', '.join(units)}; every tier needs the same ones"
            )
            continue
        problems += [
            f"tiers[{index}].enter.{unit}: must be more than "
            f"tiers[{low_index}].enter.{unit} ({below[unit]})"
            for unit in units
            if enter[unit] <= below[unit]
        ]
        low_index, low = index, tier
    return problems


def to_programme(config: ProgrammeConfig) -> Programme:
    tiers = tuple(
        Tier(
            code=t.code,
            name=t.name,
            rank=rank,
            multiplier=t.multiplier,
            benefits=tuple(t.benefits),
            enter=dict(t.enter or {}),
            keep=dict(t.keep or {}),
            invite_only=t.invite_only,
        )
        for rank, t in enumerate(config.tiers)
    )
    downgrade = config.downgrade
    return Programme(
        tiers=tiers,
        basis=Basis(config.basis),
        window=Window(WindowKind(config.window.kind), config.window.days or 0),
        downgrade=Downgrade(
            DowngradeMode(downgrade.mode), Steps(downgrade.steps), downgrade.grace_days or 0
        ),
        zone=ZoneInfo(config.time_zone),
        warn_days=config.warn_days,
    )
