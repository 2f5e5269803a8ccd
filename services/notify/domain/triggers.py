"""From an event to the messages it asks for: keys, due times and what the templates need.

An event of a coalition's account names the member shop where it happened (`at_shop`): the
message is that shop's, sent under its sender, links, templates and consent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from services.notify.domain.digests import digest_key
from services.notify.domain.messages import PlannedMessage, cart_cancel_key, plan_for_channels
from shared.events import (
    CartAbandoned,
    CustomerSignedUp,
    PointsEntry,
    PointsExpiring,
    TierAtRisk,
    TierChanged,
)

# A points digest waits this long after the day's first credit, gathering the day's others.
DIGEST_DELAY = timedelta(hours=1)


def sender_of(data: PointsEntry | PointsExpiring | TierChanged | TierAtRisk) -> str:
    """The shop a message about an account event comes from: the member shop where it
    happened for a coalition's account, else the account's own shop."""
    return data.at_shop or data.shop_id


def welcome(customer: CustomerSignedUp, *, at: datetime) -> list[PlannedMessage]:
    return plan_for_channels(
        key=f"welcome:{customer.customer_id}",
        shop_id=customer.shop_id,
        customer_id=customer.customer_id,
        trigger="customer.signed_up",
        due_at=at,
        payload={},
        has_push=customer.push_subscription is not None,
    )


def cart_reminders(
    cart: CartAbandoned,
    *,
    at: datetime,
    steps: Sequence[tuple[int, str | None]],
    has_push: bool,
) -> list[PlannedMessage]:
    """One reminder per step (minutes after `at`, optional coupon), all cancelled by an order."""
    lines = [
        {
            "sku": item.sku,
            "name": item.name,
            "quantity": item.quantity,
            "unit_price": str(item.unit_price),
            "image_url": item.image_url,
            "product_url": item.product_url,
        }
        for item in cart.items
    ]
    plans: list[PlannedMessage] = []
    for number, (after_minutes, coupon) in enumerate(steps, start=1):
        payload: dict[str, Any] = {
            "cart_id": cart.cart_id,
            "cart_url": cart.cart_url,
            "currency": cart.currency,
            "lines": lines,
            "total": str(cart.total.amount),
            "step": number,
            "coupon": coupon,
            "since": at.isoformat(),
        }
        plans += plan_for_channels(
            key=f"cart:{cart.cart_id}:{number}",
            shop_id=cart.shop_id,
            customer_id=cart.customer_id,
            trigger="cart.abandoned",
            due_at=at + timedelta(minutes=after_minutes),
            payload=payload,
            has_push=has_push,
            cancel_key=cart_cancel_key(cart.customer_id),
        )
    return plans


def tier_changed(
    event_id: str, change: TierChanged, *, at: datetime, has_push: bool
) -> list[PlannedMessage]:
    trigger = "tier.upgraded" if change.direction == "up" else "tier.downgraded"
    payload = {
        "from_tier": change.from_tier,
        "tier": change.to_tier,
        "tier_name": change.tier_name or change.to_tier,
        "benefits": list(change.benefits),
        "multiplier": str(change.multiplier),
    }
    return plan_for_channels(
        key=f"tier:{event_id}",
        shop_id=sender_of(change),
        customer_id=change.customer_id,
        trigger=trigger,
        due_at=at,
        payload=payload,
        has_push=has_push,
    )


def tier_at_risk(
    event_id: str, risk: TierAtRisk, *, at: datetime, has_push: bool
) -> list[PlannedMessage]:
    payload = {
        "tier": risk.tier,
        "needed_amount": str(risk.needed_amount),
        "basis": risk.basis,
        "currency": risk.currency,
        "deadline": risk.deadline.isoformat(),
    }
    return plan_for_channels(
        key=f"tier_at_risk:{event_id}",
        shop_id=sender_of(risk),
        customer_id=risk.customer_id,
        trigger="tier.at_risk",
        due_at=at,
        payload=payload,
        has_push=has_push,
    )


def points_digest(
    shop_id: str, customer_id: str, earned: int, *, at: datetime, local_day: date, has_push: bool
) -> list[PlannedMessage]:
    """At most one digest per customer per local day; later credits add to the pending one.
    `first_credit` lets the digest be keyed again when the customer's time zone is learnt."""
    return plan_for_channels(
        key=digest_key(customer_id, local_day),
        shop_id=shop_id,
        customer_id=customer_id,
        trigger="points.digest",
        due_at=at + DIGEST_DELAY,
        payload={"earned": earned, "day": local_day.isoformat(), "first_credit": at.isoformat()},
        has_push=has_push,
    )


def points_expiring(
    event_id: str, expiring: PointsExpiring, *, at: datetime, has_push: bool
) -> list[PlannedMessage]:
    payload = {
        "points": expiring.points,
        "expires_at": expiring.expires_at.isoformat(),
        "balance": expiring.balance,
    }
    return plan_for_channels(
        key=f"points_expiring:{event_id}",
        shop_id=sender_of(expiring),
        customer_id=expiring.customer_id,
        trigger="points.expiring",
        due_at=at,
        payload=payload,
        has_push=has_push,
    )
