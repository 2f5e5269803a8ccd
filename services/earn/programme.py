"""The earn programme file (TOML): its schema and the checks that span several settings.

docs/programme.md describes every setting with complete examples; `programme.example.toml`
beside this module is what runs when LOYALTY_PROGRAMME_FILE is not set. Every problem names its
setting, such as `campaigns[1].ends_at: must be after starts_at (2026-12-01 00:00:00+07:00)`.
"""

from __future__ import annotations

import tomllib
from datetime import datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from shared.events import CURRENCY_MINOR_UNITS, fits_minor_units
from shared.programme_files import ProgrammeError, read_toml, validate

__all__ = [
    "EXAMPLE",
    "ActionRule",
    "Actions",
    "Campaign",
    "Cashback",
    "EarningBase",
    "Expiry",
    "Membership",
    "Pending",
    "ProductRule",
    "Programme",
    "ProgrammeError",
    "PunchCard",
    "Rate",
    "Reward",
    "load_programme",
    "parse_programme",
    "programme_from_text",
]

EXAMPLE: Final = Path(__file__).with_name("programme.example.toml")

Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Text = Annotated[str, Field(min_length=1, max_length=200)]
Points = Annotated[int, Field(gt=0, le=100_000_000)]
Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=30)]
PositiveAmount = Annotated[Decimal, Field(gt=0, allow_inf_nan=False, max_digits=30)]
Factor = Annotated[Decimal, Field(ge=0, le=100, allow_inf_nan=False)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Rate(_Section):
    """`points` points for every whole `per_amount` of the earning base, in one currency."""

    per_amount: PositiveAmount
    points: Points = 1


class EarningBase(_Section):
    """What of the paid total earns: shipping and tax are left out unless included here.

    Discounts always reduce the base: points are earned on what the customer paid.
    """

    include_shipping: bool = False
    include_tax: bool = False


class ProductRule(_Section):
    """Lines of these SKUs or categories earn `multiplier` times the base rate; 0 excludes them.

    A SKU rule wins over a category rule; the first matching rule of each kind applies.
    """

    skus: list[Text] = Field(default_factory=list, max_length=10_000)
    categories: list[Text] = Field(default_factory=list, max_length=1_000)
    multiplier: Factor


class Campaign(_Section):
    """Bonus points for orders paid within the campaign's times, in the shop's time zone.

    Either `multiplier` (the campaign adds (multiplier - 1) x the order's base points) or
    `bonus_points` (a fixed bonus per qualifying order). Caps are in bonus points.
    """

    code: Code
    name: Text
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] | None = Field(
        default=None, description="ISO weekdays, 1 = Monday; all days when absent."
    )
    hours: tuple[time, time] | None = Field(
        default=None, description="[from, to) local times; to may be 00:00 for midnight."
    )
    categories: list[Text] | None = Field(
        default=None, description="Only lines of these categories count; all when absent."
    )
    multiplier: Annotated[Decimal, Field(gt=1, le=100, allow_inf_nan=False)] | None = None
    bonus_points: Points | None = None
    min_amount: dict[str, PositiveAmount] = Field(default_factory=dict)
    per_customer_cap: Points | None = None
    total_cap: Points | None = None


class ActionRule(_Section):
    """Points for something other than buying, at most `limit` times per `per`."""

    points: Points
    limit: Annotated[int, Field(ge=1, le=10_000)] = 1
    per: Literal["day", "week", "month", "year", "lifetime"] = "lifetime"


class Referral(_Section):
    """Both sides earn once the referred customer's first order is paid."""

    referrer_points: Points
    referred_points: Points
    limit: Annotated[int, Field(ge=1, le=10_000)] = 50
    per: Literal["day", "week", "month", "year", "lifetime"] = "year"


class Actions(_Section):
    signup: ActionRule | None = None
    birthday: Points | None = Field(default=None, description="Once a year, on the local day.")
    referral: Referral | None = None
    review: ActionRule | None = None
    social_share: ActionRule | None = None
    newsletter: ActionRule | None = None


class Cashback(_Section):
    """Store credit worth `percent` of the earning base, per currency, beside the points."""

    percent: dict[str, Annotated[Decimal, Field(gt=0, le=100, allow_inf_nan=False)]]


class PunchCard(_Section):
    """Every `every`-th qualifying order earns `reward_points`.

    An order qualifies when its lines of the card's SKUs or categories come to at least
    `min_amount` in its currency: splitting one purchase into many small orders earns nothing.
    """

    code: Code
    name: Text
    every: Annotated[int, Field(ge=2, le=1000)]
    skus: list[Text] = Field(default_factory=list)
    categories: list[Text] = Field(default_factory=list)
    min_amount: dict[str, PositiveAmount]
    reward_points: Points


class Membership(_Section):
    """Buying `sku` pays for `tier` during `months` from the payment."""

    sku: Text
    tier: Code
    months: Annotated[int, Field(ge=1, le=120)]


class Pending(_Section):
    """Points of an order stay pending `return_window_days` after order.completed; when no
    completion arrives within `completion_timeout_days` of the payment, the window starts then.
    Both 0 makes points available at payment."""

    return_window_days: Annotated[int, Field(ge=0, le=365)] = 0
    completion_timeout_days: Annotated[int, Field(ge=0, le=365)] = 0


class Reward(_Section):
    """An entry of the rewards catalogue.

    voucher: a code worth `value` (per currency); points_as_money: `value` per `cost_points`
    paid with points at checkout, in steps of `cost_points`; free_shipping; gift: `sku` free.
    """

    code: Code
    name: Text
    kind: Literal["voucher", "points_as_money", "free_shipping", "gift"]
    cost_points: Points
    value: dict[str, PositiveAmount] = Field(default_factory=dict)
    sku: Text | None = None
    valid_days: Annotated[int, Field(ge=1, le=3650)] = 90
    active: bool = True


class Expiry(_Section):
    """never; after_months: each earning expires `months` after it (spent oldest first);
    end_of_period: at the end of the `period` (month or year) `months` after earning;
    inactivity: everything expires after `months` without a paid order."""

    mode: Literal["never", "after_months", "end_of_period", "inactivity"] = "never"
    months: Annotated[int, Field(ge=0, le=240)] = 12
    period: Literal["month", "year"] = "year"
    warn_days: Annotated[int, Field(ge=0, le=365)] = 30


class Programme(_Section):
    """The whole earn programme; `currencies` holds the base rate of every accepted currency."""

    time_zone: str = "UTC"
    currencies: dict[str, Rate] = Field(min_length=1)
    earning_base: EarningBase = Field(default_factory=EarningBase)
    products: list[ProductRule] = Field(default_factory=list, max_length=1000)
    campaigns: list[Campaign] = Field(default_factory=list, max_length=1000)
    actions: Actions = Field(default_factory=Actions)
    cashback: Cashback | None = None
    punch_cards: list[PunchCard] = Field(default_factory=list, max_length=100)
    memberships: list[Membership] = Field(default_factory=list, max_length=100)
    pending: Pending = Field(default_factory=Pending)
    rewards: list[Reward] = Field(default_factory=list, max_length=1000)
    expiry: Expiry = Field(default_factory=Expiry)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def reward(self, code: str) -> Reward | None:
        return next((r for r in self.rewards if r.code == code), None)


def load_programme(path: Path | None = None) -> Programme:
    """Read and check the programme file; the shipped example when no path is given."""
    source = path or EXAMPLE
    return parse_programme(read_toml(source), source=str(source))


def programme_from_text(text: str, *, source: str = "programme") -> Programme:
    """Check a programme given as TOML text (a published version), with the file's checks
    and messages; `source` names it in the errors (a shop and a version, say)."""
    try:
        raw = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ProgrammeError(f"{source}: not valid TOML: {exc}") from None
    return parse_programme(raw, source=source)


def parse_programme(raw: dict[str, Any], *, source: str = "programme") -> Programme:
    return validate(Programme, raw, what=f"earn programme {source}", checks=problems_of)


def problems_of(p: Programme) -> list[str]:
    """The rules that span several settings; each problem names the setting."""
    problems: list[str] = []
    try:
        ZoneInfo(p.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"time_zone: {p.time_zone!r} is not an IANA time zone name")
    for code, rate in p.currencies.items():
        problems += _money(f"currencies.{code}.per_amount", code, rate.per_amount)
    for i, rule in enumerate(p.products):
        if not rule.skus and not rule.categories:
            problems.append(f"products[{i}]: name skus or categories")
    problems += _unique("campaigns", [c.code for c in p.campaigns])
    for i, c in enumerate(p.campaigns):
        problems += _campaign(p, f"campaigns[{i}]", c)
    if p.cashback is not None:
        problems += _known(p, "cashback.percent", p.cashback.percent)
    problems += _unique("punch_cards", [c.code for c in p.punch_cards])
    for i, card in enumerate(p.punch_cards):
        at = f"punch_cards[{i}]"
        if not card.skus and not card.categories:
            problems.append(f"{at}: name skus or categories")
        problems += _known(p, f"{at}.min_amount", card.min_amount)
        problems += [
            f"{at}.min_amount.{c}: required for every currency"
            for c in p.currencies
            if c not in card.min_amount
        ]
    problems += _unique("memberships", [m.sku for m in p.memberships], key="sku")
    problems += _unique("rewards", [r.code for r in p.rewards])
    for i, reward in enumerate(p.rewards):
        problems += _reward(p, f"rewards[{i}]", reward)
    return problems


def _campaign(p: Programme, at: str, c: Campaign) -> list[str]:
    problems = []
    if c.ends_at <= c.starts_at:
        problems.append(f"{at}.ends_at: must be after starts_at ({c.starts_at})")
    if (c.multiplier is None) == (c.bonus_points is None):
        problems.append(f"{at}: give exactly one of multiplier and bonus_points")
    if c.hours is not None and c.hours[0] == c.hours[1]:
        problems.append(f"{at}.hours: from and to must differ")
    if c.per_customer_cap and c.total_cap and c.per_customer_cap > c.total_cap:
        problems.append(f"{at}.per_customer_cap: must not be more than total_cap")
    return problems + _known(p, f"{at}.min_amount", c.min_amount)


def _reward(p: Programme, at: str, r: Reward) -> list[str]:
    problems = []
    if r.kind in ("voucher", "points_as_money") and not r.value:
        problems.append(f"{at}.value: required for a {r.kind} reward, per currency")
    if r.kind in ("free_shipping", "gift") and r.value:
        problems.append(f"{at}.value: a {r.kind} reward has no money value")
    if r.kind == "gift" and r.sku is None:
        problems.append(f"{at}.sku: required for a gift reward")
    return problems + _known(p, f"{at}.value", r.value)


def _known(p: Programme, at: str, amounts: dict[str, Decimal]) -> list[str]:
    problems = []
    for code, amount in amounts.items():
        if code not in p.currencies:
            problems.append(
                f"{at}.{code}: {code} is not one of currencies ({', '.join(p.currencies)})"
            )
        else:
            problems += _money(f"{at}.{code}", code, amount)
    return problems


def _money(at: str, code: str, amount: Decimal) -> list[str]:
    if code not in CURRENCY_MINOR_UNITS:
        return [f"{at}: {code!r} is not an ISO 4217 currency code"]
    if not fits_minor_units(amount, code):
        return [f"{at}: has more decimal places than {code} allows"]
    return []


def _unique(section: str, values: list[str], *, key: str = "code") -> list[str]:
    seen: dict[str, int] = {}
    problems = []
    for i, value in enumerate(values):
        if value in seen:
            problems.append(f"{section}[{i}].{key}: {value!r} is also {section}[{seen[value]}]")
        seen.setdefault(value, i)
    return problems


def campaign_applies(c: Campaign, paid_at: datetime, zone: ZoneInfo) -> bool:
    """Whether an order paid at `paid_at` falls in the campaign's dates, weekdays and hours."""
    if not c.starts_at <= paid_at < c.ends_at:
        return False
    local = paid_at.astimezone(zone)
    if c.weekdays is not None and local.isoweekday() not in c.weekdays:
        return False
    if c.hours is None:
        return True
    start, end = c.hours
    now = local.time().replace(tzinfo=None)
    if end == time(0) or start < end:
        return start <= now and (end == time(0) or now < end)
    return now >= start or now < end  # across midnight, as 22:00 to 02:00
