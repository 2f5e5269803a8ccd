"""The formulas a shop measures its programme by (docs/analytics.md gives each in words).

Every rate is a percentage; a formula whose denominator is zero has no value (None), which
the report shows as "n/a" rather than pretending to a zero.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

HUNDRED = Decimal(100)
DAYS_PER_YEAR = Decimal("365.25")
RATE_PLACES = Decimal("0.01")


def rate(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """part / whole x 100, to two decimals; None when whole is zero."""
    if whole == 0:
        return None
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(RATE_PLACES, ROUND_HALF_EVEN)


def retention_rate(at_start: int, at_end: int, new: int) -> Decimal | None:
    """CRR = (E - N) / S x 100: customers at the end, less those acquired, over those at start."""
    return rate(at_end - new, at_start)


def adoption_rate(members: int, customers: int) -> Decimal | None:
    """Programme adoption = members / all customers x 100."""
    return rate(members, customers)


def redemption_rate(redeemed: int, issued: int) -> Decimal | None:
    """Points spent / points issued x 100."""
    return rate(redeemed, issued)


def breakage_rate(expired: int, issued: int) -> Decimal | None:
    """Points expired unspent / points issued x 100."""
    return rate(expired, issued)


def average_order_value(revenue: Decimal, orders: int) -> Decimal | None:
    """AOV = total revenue / number of orders."""
    return None if orders == 0 else revenue / orders


def purchase_frequency(orders: int, customers: int) -> Decimal | None:
    """Orders / unique customers who ordered."""
    return None if customers == 0 else Decimal(orders) / customers


def customer_value(aov: Decimal | None, frequency: Decimal | None) -> Decimal | None:
    """Customer value = AOV x purchase frequency (over the period)."""
    return None if aov is None or frequency is None else aov * frequency


def per_year(value: Decimal | None, period_days: int) -> Decimal | None:
    """A value measured over `period_days`, scaled to a year of 365.25 days."""
    return None if value is None else value * DAYS_PER_YEAR / period_days


def lifetime_value(yearly_value: Decimal | None, lifespan_years: Decimal | None) -> Decimal | None:
    """CLV = customer value (per year) x average customer lifespan (years)."""
    if yearly_value is None or lifespan_years is None:
        return None
    return yearly_value * lifespan_years


def years(days: Decimal | None) -> Decimal | None:
    return None if days is None else days / DAYS_PER_YEAR


def money(amount: Decimal | None, minor_units: int) -> Decimal | None:
    """An amount rounded to the currency's minor units (VND has none)."""
    if amount is None:
        return None
    return amount.quantize(Decimal(1).scaleb(-minor_units), ROUND_HALF_EVEN)
