"""tier.changed: the multipliers earn applies to orders from each change's effective time on."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from services.earn.adapters.tiers import TierSeen
from services.earn.unit_of_work import UnitOfWork
from shared.consumer import Incoming, Rejection

log = structlog.get_logger(__name__)


async def record_tier_changes(uow: UnitOfWork, events: Sequence[Incoming]) -> list[Rejection]:
    """tier.changed tells earn the multiplier from its effective time on; tier.at_risk is not
    earn's concern."""
    await uow.tiers.record(
        [
            TierSeen(
                event_id=event.id,
                shop_id=event.data.shop_id,
                customer_id=event.data.customer_id,
                tier=event.data.to_tier,
                multiplier=event.data.multiplier,
                effective_at=event.data.effective_at,
            )
            for incoming in events
            if (event := incoming.event) is not None and event.type == "tier.changed"
        ],
    )
    return []
