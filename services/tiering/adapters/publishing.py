"""tier.changed and tier.at_risk as outbox messages, with ids derived from what they say."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Final

from services.tiering.domain.rules import Basis, Programme
from services.tiering.domain.state import AtRisk, TierChange
from shared.callers import DEFAULT_SHOP
from shared.events import TierAtRisk, TierChanged, encode_event, make_event
from shared.outbox import OutboxMessage

SOURCE: Final = "loyalty/tiering"
TOPIC: Final = "loyalty.tiers"
# Fixed namespace: the same change always gets the same id, in every process and every replay.
_IDS: Final = uuid.UUID("6f1c2d1e-8a53-4f0e-9b7a-3c2f5d9e4a10")


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _whose(shop_id: str, customer_id: str) -> tuple[str, ...]:
    # The shop `default` names its customers as the single-shop release did, so that its ids
    # stay what they were: a replay after the upgrade finds them already published.
    return (customer_id,) if shop_id == DEFAULT_SHOP else (shop_id, customer_id)


def change_id(change: TierChange) -> str:
    """Derived from shop, customer, from, to and effective time: a replay can never double it."""
    name = "|".join(
        (
            "tier.changed",
            *_whose(change.shop_id, change.customer_id),
            change.from_tier,
            change.to_tier,
            _instant(change.effective_at),
        )
    )
    return str(uuid.uuid5(_IDS, name))


def at_risk_id(warning: AtRisk) -> str:
    whose = _whose(warning.shop_id, warning.customer_id)
    name = "|".join(("tier.at_risk", *whose, warning.tier, _instant(warning.deadline)))
    return str(uuid.uuid5(_IDS, name))


def tier_changed(
    programme: Programme, change: TierChange, event_id: str, *, at_shop: str | None = None
) -> OutboxMessage:
    to = programme.tier(change.to_tier)
    spend = programme.basis is Basis.SPEND
    data = TierChanged(
        shop_id=change.shop_id,
        at_shop=at_shop,
        customer_id=change.customer_id,
        from_tier=change.from_tier,
        to_tier=change.to_tier,
        direction=change.direction,
        reason=change.reason,
        qualifying_amount=change.amount,
        basis=programme.basis.value,
        currency=change.unit if spend else None,
        effective_at=change.effective_at,
        multiplier=to.multiplier,
        tier_name=to.name,
        benefits=list(to.benefits),
    )
    event = make_event(
        "tier.changed",
        source=SOURCE,
        subject=change.customer_id,
        data=data,
        id=event_id,
        time=change.effective_at,
    )
    return OutboxMessage(TOPIC, change.customer_id.encode(), encode_event(event))


def tier_at_risk(
    programme: Programme, warning: AtRisk, *, now: datetime, at_shop: str | None = None
) -> OutboxMessage:
    spend = programme.basis is Basis.SPEND
    data = TierAtRisk(
        shop_id=warning.shop_id,
        at_shop=at_shop,
        customer_id=warning.customer_id,
        tier=warning.tier,
        needed_amount=warning.needed,
        basis=programme.basis.value,
        currency=warning.unit if spend else None,
        deadline=warning.deadline,
    )
    event = make_event(
        "tier.at_risk",
        source=SOURCE,
        subject=warning.customer_id,
        data=data,
        id=at_risk_id(warning),
        time=now,
    )
    return OutboxMessage(TOPIC, warning.customer_id.encode(), encode_event(event))
