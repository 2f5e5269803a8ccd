"""Use cases of the earn service: decide with the domain, persist in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from services.earn.adapters.tiers import TierSeen, record_tiers
from shared.consumer import Incoming, Rejection
from shared.db import Connection

log = structlog.get_logger(__name__)

SOURCE = "loyalty/earn"


async def record_tier_changes(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
    """tier.changed tells earn the multiplier from its effective time on; tier.at_risk is not
    earn's concern."""
    await record_tiers(
        conn,
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
