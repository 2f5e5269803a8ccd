"""What a paid order earns, and what a cancellation or refund takes back: pure rules.

Rounding, stated once: the earning base is weighted by the product rules, only whole units of
`per_amount` earn (rounded down), the tier multiplier applies to those base points and the
result is rounded down again; campaign bonuses and cashback are rounded down as well. A
reversal takes back the share of the order's points that the refunds so far are of its total,
rounded down, so that refunds adding up to the whole order take back every point.

Memberships, stated once: an order pays for one membership of a SKU whatever quantity of it
the order holds, and the membership ends when the order is cancelled or refunded in full, or
when its refunds have given back every unit of the SKU the order bought.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import TypeVar
from zoneinfo import ZoneInfo

from services.earn.domain.calendar import add_months
from services.earn.programme import Campaign, Programme, PunchCard, Rate, campaign_applies
from shared.events import CURRENCY_MINOR_UNITS, OrderPaid
from shared.events.inputs import LineItem, RefundedItem

ZERO = Decimal(0)


K = TypeVar("K")  # what a customer is keyed by: (shop, customer id) in earn


def floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def earning_base(order: OrderPaid, programme: Programme) -> Decimal:
    """The paid total without shipping and tax, unless the programme includes them."""
    totals, base = order.totals, order.totals.total.amount
    if totals.shipping is not None and not programme.earning_base.include_shipping:
        base -= totals.shipping.amount
    if totals.tax is not None and not programme.earning_base.include_tax:
        base -= totals.tax.amount
    return max(base, ZERO)


def line_factor(item: LineItem, programme: Programme) -> Decimal:
    """The product rules' multiplier of a line: a SKU rule wins over a category rule."""
    for rule in programme.products:
        if item.sku in rule.skus:
            return rule.multiplier
    for rule in programme.products:
        if item.category in rule.categories:
            return rule.multiplier
    return Decimal(1)


def _line_amounts(order: OrderPaid) -> list[Decimal]:
    return [item.unit_price * item.quantity for item in order.items]


def share_of_base(order: OrderPaid, base: Decimal, chosen: list[bool]) -> Decimal:
    """The part of the base that the chosen lines account for, pro rata to their amounts."""
    amounts = _line_amounts(order)
    total = sum(amounts, ZERO)
    if total == 0:
        return base if all(chosen) else ZERO
    return base * sum((a for a, c in zip(amounts, chosen, strict=True) if c), ZERO) / total


def weighted_base(order: OrderPaid, base: Decimal, programme: Programme) -> Decimal:
    """The base with each line's share weighted by its product rule (0 excludes a line)."""
    if not programme.products:
        return base
    amounts = _line_amounts(order)
    total = sum(amounts, ZERO)
    if total == 0:
        return base
    weighted = sum(
        (a * line_factor(item, programme) for a, item in zip(amounts, order.items, strict=True)),
        ZERO,
    )
    return base * weighted / total


def units_points(amount: Decimal, rate: Rate) -> int:
    """Points for an amount: whole units of per_amount only."""
    if amount <= 0:
        return 0
    return floor(amount / rate.per_amount) * rate.points


@dataclass(frozen=True, slots=True)
class Bonus:
    campaign: Campaign
    points: int  # before caps


@dataclass(frozen=True, slots=True)
class MembershipSale:
    """A membership an order pays for: one, whatever quantity of its SKU the order holds."""

    sku: str
    tier: str
    months: int
    quantity: int  # units of the SKU bought: refunds must give all of them back to end it


@dataclass(slots=True)  # not frozen: one per order, and frozen makes __init__ 3 times slower
class Earning:
    """What a paid order earns before campaign caps and punch cards are settled."""

    base_amount: Decimal
    base_points: int  # the rate applied to the weighted base
    tier_points: int  # base points times the tier multiplier
    bonuses: list[Bonus] = field(default_factory=list)
    credit_minor: int = 0
    punch_cards: list[PunchCard] = field(default_factory=list)
    memberships: list[MembershipSale] = field(default_factory=list)


def earning_of(
    order: OrderPaid, paid_at: datetime, programme: Programme, multiplier: Decimal
) -> Earning | None:
    """None when the programme has no rate for the order's currency."""
    rate = programme.currencies.get(order.currency)
    if rate is None:
        return None
    base = earning_base(order, programme)
    base_points = units_points(weighted_base(order, base, programme), rate)
    tier_points = floor(base_points * multiplier)
    zone = programme.zone
    bonuses = [
        Bonus(c, points)
        for c in programme.campaigns
        if (
            points := campaign_bonus(
                c, order, base=base, paid_at=paid_at, programme=programme, rate=rate, zone=zone
            )
        )
        > 0
    ]
    credit = 0
    if programme.cashback is not None and order.currency in programme.cashback.percent:
        percent = programme.cashback.percent[order.currency]
        minor = Decimal(10) ** CURRENCY_MINOR_UNITS[order.currency]
        credit = floor(base * percent / 100 * minor)
    cards = [c for c in programme.punch_cards if punch_qualifies(c, order, base)]
    memberships = []
    if programme.memberships:
        units = units_by_sku(order.items)
        memberships = [
            MembershipSale(m.sku, m.tier, m.months, units[m.sku])
            for m in programme.memberships
            if m.sku in units
        ]
    return Earning(base, base_points, tier_points, bonuses, credit, cards, memberships)


def campaign_bonus(
    c: Campaign,
    order: OrderPaid,
    *,
    base: Decimal,
    paid_at: datetime,
    programme: Programme,
    rate: Rate,
    zone: ZoneInfo,
) -> int:
    """The campaign's bonus for the order before caps; 0 when it does not apply."""
    if not campaign_applies(c, paid_at, zone):
        return 0
    chosen = [c.categories is None or item.category in c.categories for item in order.items]
    qualifying = share_of_base(order, base, chosen)
    if qualifying <= 0:
        return 0
    minimum = c.min_amount.get(order.currency)
    if minimum is not None and qualifying < minimum:
        return 0
    if c.bonus_points is not None:
        return c.bonus_points
    assert c.multiplier is not None
    # Weighted like the base points, so excluded products earn no bonus either.
    weighted = weighted_base(order, base, programme) * qualifying / base if base else ZERO
    return floor(units_points(weighted, rate) * (c.multiplier - 1))


def punch_qualifies(card: PunchCard, order: OrderPaid, base: Decimal) -> bool:
    """The card's lines come to at least its minimum amount of the paid base."""
    chosen = [item.sku in card.skus or item.category in card.categories for item in order.items]
    if not any(chosen):
        return False
    minimum = card.min_amount.get(order.currency)
    return minimum is not None and share_of_base(order, base, chosen) >= minimum


def capped(points: int, used_by_customer: int, used_in_all: int, c: Campaign) -> int:
    """What is left of a bonus under the campaign's per-customer and total caps."""
    if c.per_customer_cap is not None:
        points = min(points, max(c.per_customer_cap - used_by_customer, 0))
    if c.total_cap is not None:
        points = min(points, max(c.total_cap - used_in_all, 0))
    return points


def first_release(paid_at: datetime, programme: Programme) -> datetime:
    """When the order's points become available if no completion arrives."""
    pending = programme.pending
    return paid_at + timedelta(days=pending.completion_timeout_days + pending.return_window_days)


def release_after_completion(
    release_at: datetime, completed_at: datetime, programme: Programme
) -> datetime:
    """A completion starts the return window, unless the points were due earlier already."""
    return min(release_at, completed_at + timedelta(days=programme.pending.return_window_days))


def reversal_target(points: int, paid_total: Decimal, refunded: Decimal, *, full: bool) -> int:
    """Points of the order taken back once `refunded` of `paid_total` has been given back."""
    if full or paid_total <= 0 or refunded >= paid_total:
        return points
    return floor(points * refunded / paid_total)


def membership_ends(starts_at: datetime, months: int) -> datetime:
    return add_months(starts_at, months)


def units_by_sku(lines: Iterable[LineItem | RefundedItem]) -> dict[str, int]:
    """Quantities by SKU; several lines of one SKU add up."""
    units: dict[str, int] = {}
    for line in lines:
        units[line.sku] = units.get(line.sku, 0) + line.quantity
    return units


def membership_refund(bought: int, refunded_before: int, refunded_now: int) -> tuple[int, bool]:
    """Units of a membership's SKU given back once this refund is counted (never more than
    were bought), and whether that is every unit bought: the membership then ends. While one
    unit is kept the customer still holds the one membership the order paid for."""
    refunded = min(bought, refunded_before + refunded_now)
    return refunded, refunded >= bought


# Balances, lifetime totals and pending points are PostgreSQL bigints.
LEDGER_MAX = 2**63 - 1


def over_ledger_limit(held: dict[K, int], customer_id: K, points: int) -> bool:
    """Whether `points` more would take what the customer holds past the ledger's range; if
    not, counts them in `held` (what the customer's balance, lifetime total and pending points
    can reach)."""
    total = held.get(customer_id, 0) + points
    if total > LEDGER_MAX:
        return True
    held[customer_id] = total
    return False
