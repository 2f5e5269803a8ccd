"""Everything the rules read about a set of locked customers, and writing back what they decide."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from services.tiering import metrics
from services.tiering.adapters.contributions import load_activity
from services.tiering.adapters.customers import StoredCustomer, save_customers
from services.tiering.adapters.floors import load_floors
from services.tiering.adapters.history import record_changes
from services.tiering.adapters.publishing import change_id, tier_at_risk, tier_changed
from services.tiering.domain.activity import Activity
from services.tiering.domain.calendar import earliest_day_needed
from services.tiering.domain.rules import Programme, WindowKind
from services.tiering.domain.state import AtRisk, Floor, Member, TierChange, TierState
from shared import metrics as shared_metrics
from shared.db import Connection
from shared.outbox import enqueue

log = structlog.get_logger(__name__)


@dataclass
class Context:
    """The activity and floors of the customers a batch works on."""

    activity: dict[Member, Activity]
    floors: dict[Member, list[Floor]]


def earliest(state: TierState, *instants: datetime) -> datetime:
    """The first instant the rules may look at for this customer: its own catch-up start."""
    known = [state.evaluated_until, state.review_at, state.below_since, *instants]
    return min(at for at in known if at is not None)


async def load_context(
    conn: Connection,
    schema: str,
    programmes: Mapping[Member, Sequence[Programme]],
    from_instant: Mapping[Member, datetime],
) -> Context:
    """Activity from the first day each customer's checks can read, under any of the programme
    versions it is worked on with; floors that still matter."""
    since = {
        m: (
            min(earliest_day_needed(p, at) for p in programmes[m]),
            any(p.window.kind is WindowKind.LIFETIME for p in programmes[m]),
        )
        for m, at in from_instant.items()
    }
    activity = await load_activity(conn, schema, since)
    oldest = min(from_instant.values(), default=None)
    floors = await load_floors(conn, schema, from_instant, ending_after=oldest)
    return Context(activity, floors)


async def persist(
    conn: Connection,
    schema: str,
    programmes: Mapping[Member, Programme],
    *,
    customers: Sequence[StoredCustomer],
    changes: Sequence[TierChange],
    warnings: Sequence[AtRisk],
    now: datetime,
) -> int:
    """Write states, append new history and enqueue its events; returns the events enqueued."""
    await save_customers(conn, schema, customers)
    identified = [(change_id(c), c) for c in changes]
    new = await record_changes(conn, schema, identified)
    published = [(i, c) for i, c in identified if i in new]
    # A coalition's account names the member shop of its last activity (at_shop).
    at_shop = {(r.state.shop_id, r.state.customer_id): r.last_shop_id for r in customers}
    messages = [
        tier_changed(
            programmes[c.shop_id, c.customer_id],
            c,
            i,
            at_shop=at_shop.get((c.shop_id, c.customer_id)),
        )
        for i, c in published
    ]
    messages += [
        tier_at_risk(
            programmes[w.shop_id, w.customer_id],
            w,
            now=now,
            at_shop=at_shop.get((w.shop_id, w.customer_id)),
        )
        for w in warnings
    ]
    await enqueue(conn, schema, messages)
    for event_id, change in published:
        shared_metrics.TIER_CHANGES.labels("tiering", change.direction, change.to_tier).inc()
        log.info(
            "tier_changed",
            shop_id=change.shop_id,
            customer_id=change.customer_id,
            from_tier=change.from_tier,
            to_tier=change.to_tier,
            reason=change.reason,
            effective_at=change.effective_at.isoformat(),
            event_id=event_id,
        )
    metrics.TIER_WARNINGS.labels("tiering").inc(len(warnings))
    return len(messages)
