"""What a redemption costs and gives, amounts of store credit in minor units, whether a balance
allows a spend, and the codes and ids spends get: no I/O."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from services.earn.domain.spending import (
    CREDIT_ID_PREFIX,
    POINTS,
    check_spend,
    random_id,
    store_credit,
)
from services.earn.programme import Reward
from services.earn.refusals import InvalidField
from shared.events import check_minor_units, minor_units

# Base32 without the characters people confuse when they read a code aloud or type it
# (0/O, 1/I): 32 symbols, 5 bits each, so 16 of them carry 80 random bits.
VOUCHER_ALPHABET: Final = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
VOUCHER_LENGTH: Final = 16
MAX_STEPS: Final = 1_000_000
MAX_SPEND_MINOR: Final = 10**15  # far beyond any checkout, well inside bigint


@dataclass(frozen=True, slots=True)
class Price:
    """The points a redemption takes, and the money it is worth (None for shipping, gifts)."""

    points: int
    value: Decimal | None
    currency: str | None


def price(reward: Reward, *, currency: str | None, steps: int | None, points: int | None) -> Price:
    """The price of one redemption of `reward`; raises InvalidField naming the field at fault.

    points_as_money is bought in whole steps of `cost_points` (given as `steps`, or as
    `points` that are a multiple of `cost_points`); every other kind costs `cost_points` once.
    """
    if reward.kind == "points_as_money":
        count = _steps(reward, steps, points)
    elif steps is not None or points is not None:
        field = "steps" if steps is not None else "points"
        raise InvalidField(f"body.{field}", f"only points_as_money rewards take {field}")
    else:
        count = 1
    cost = reward.cost_points * count
    if not reward.value:
        if currency is not None:
            raise InvalidField("body.currency", f"reward {reward.code!r} has no money value")
        return Price(cost, None, None)
    chosen = _currency(reward, currency)
    return Price(cost, reward.value[chosen] * count, chosen)


def _steps(reward: Reward, steps: int | None, points: int | None) -> int:
    if (steps is None) == (points is None):
        raise InvalidField("body.steps", "give exactly one of steps and points")
    if points is not None:
        if points % reward.cost_points:
            raise InvalidField(
                "body.points", f"must be a multiple of {reward.cost_points} (one step)"
            )
        count = points // reward.cost_points
    else:
        count = steps or 0
    if not 1 <= count <= MAX_STEPS:
        raise InvalidField("body.steps", f"must be from 1 to {MAX_STEPS}")
    return count


def _currency(reward: Reward, currency: str | None) -> str:
    offered = sorted(reward.value)
    if currency is None:
        if len(offered) == 1:
            return offered[0]
        raise InvalidField(
            "body.currency", f"required: reward {reward.code!r} has a value in {', '.join(offered)}"
        )
    if currency not in reward.value:
        raise InvalidField(
            "body.currency", f"reward {reward.code!r} has a value only in {', '.join(offered)}"
        )
    return currency


def check_funds(*, available: int, pending: int, cost: int) -> None:
    """Refuse a redemption that the available points do not cover: a negative balance (after
    a reversal of spent points) blocks every redemption, and pending points cannot be spent."""
    check_spend(POINTS, available=available, pending=pending, amount=cost)


def voucher_code() -> str:
    """A new unguessable voucher code, as XXXX-XXXX-XXXX-XXXX."""
    symbols = "".join(secrets.choice(VOUCHER_ALPHABET) for _ in range(VOUCHER_LENGTH))
    return "-".join(symbols[i : i + 4] for i in range(0, VOUCHER_LENGTH, 4))


def redemption_id() -> str:
    """A new redemption id: random, so that ids cannot be enumerated."""
    return POINTS.new_id()


def to_minor(amount: Decimal, currency: str) -> int:
    """The amount in minor units of `currency` ("12.50" USD is 1250, "50000" VND is 50000).

    Raises ValueError when the amount is not positive, is finer than the currency's minor
    unit, or is too large (over MAX_SPEND_MINOR minor units).
    """
    if not amount > 0:
        msg = "must be more than 0"
        raise ValueError(msg)
    check_minor_units(amount, currency)
    minor = int(amount.scaleb(minor_units(currency)))
    if minor > MAX_SPEND_MINOR:
        msg = f"must be at most {MAX_SPEND_MINOR} minor units of {currency}"
        raise ValueError(msg)
    return minor


def check_credit(*, balance: int, pending: int, amount: int, currency: str) -> None:
    """Refuse a spend of `amount` minor units that the available credit does not cover: a
    negative credit (after a reversal of spent cashback) blocks every spend in its currency,
    and pending credit cannot be spent."""
    check_spend(store_credit(currency), available=balance, pending=pending, amount=amount)


def spend_id() -> str:
    """A new store credit spend id: random, so that ids cannot be enumerated."""
    return random_id(CREDIT_ID_PREFIX)
