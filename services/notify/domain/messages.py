"""The vocabulary of notify: triggers, categories, channels and messages planned for later."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Category = Literal["transactional", "marketing"]
ChannelName = Literal["email", "push"]

# trigger -> (template, category). Transactional messages are exempt from the frequency cap
# and are sent before marketing ones; every message still needs consent and waits out quiet
# hours.
TRIGGERS: dict[str, tuple[str, Category]] = {
    "customer.signed_up": ("welcome", "transactional"),
    "cart.abandoned": ("cart_reminder", "marketing"),
    "tier.upgraded": ("tier_upgraded", "transactional"),
    "tier.at_risk": ("tier_at_risk", "transactional"),
    "tier.downgraded": ("tier_downgraded", "transactional"),
    "points.digest": ("points_digest", "transactional"),
    "points.expiring": ("points_expiring", "transactional"),
    "birthday": ("birthday", "marketing"),
    "winback": ("winback", "marketing"),
}

TEMPLATES = tuple(sorted({template for template, _ in TRIGGERS.values()}))


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """A message to send at `due_at`, unless cancelled or suppressed by then.

    `dedup_key` is unique per trigger occurrence and channel within the shop: planning the same
    message twice (a replayed event, two replicas) yields one row.
    """

    dedup_key: str
    shop_id: str
    customer_id: str
    trigger: str
    channel: ChannelName
    due_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    cancel_key: str | None = None

    @property
    def template(self) -> str:
        return TRIGGERS[self.trigger][0]

    @property
    def category(self) -> Category:
        return TRIGGERS[self.trigger][1]


def plan_for_channels(
    *,
    key: str,
    shop_id: str,
    customer_id: str,
    trigger: str,
    due_at: datetime,
    payload: dict[str, Any],
    has_push: bool,
    cancel_key: str | None = None,
) -> list[PlannedMessage]:
    """The same message by email and, when the customer has a push subscription, by push."""
    channels: tuple[ChannelName, ...] = ("email", "push") if has_push else ("email",)
    return [
        PlannedMessage(
            dedup_key=f"{key}:{channel}",
            shop_id=shop_id,
            customer_id=customer_id,
            trigger=trigger,
            channel=channel,
            due_at=due_at,
            payload=payload,
            cancel_key=cancel_key,
        )
        for channel in channels
    ]


def cart_cancel_key(customer_id: str) -> str:
    """Every cart reminder of a customer (at a shop) shares this key: an order cancels them all."""
    return f"cart:{customer_id}"
