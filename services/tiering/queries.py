"""Read-only questions about one customer's tier, for the HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from services.tiering.adapters.context import earliest, load_context
from services.tiering.adapters.customers import read_customer
from services.tiering.domain.activity import Activity, window_totals
from services.tiering.domain.progress import Progress, progress
from services.tiering.domain.rules import Programme
from services.tiering.domain.state import Floor, Member, TierState
from shared.db import Connection


@dataclass(frozen=True, slots=True)
class Standing:
    """A customer's stored state with the activity and floors the rules read."""

    state: TierState
    activity: Activity
    floors: list[Floor]

    def qualifying(self, programme: Programme, now: datetime) -> dict[str, Decimal]:
        return dict(window_totals(programme, self.activity, now))

    def grace_ends_at(self, programme: Programme) -> datetime | None:
        if self.state.below_since is None:
            return None
        return self.state.below_since + timedelta(days=programme.downgrade.grace_days)

    def progress(self, programme: Programme, now: datetime) -> Progress:
        return progress(programme, self.state, self.activity, now)


async def read_standing(
    conn: Connection,
    schema: str,
    programme: Programme,
    member: Member,
    now: datetime,
) -> Standing | None:
    """None for a customer tiering has never seen at this shop."""
    stored = await read_customer(conn, schema, *member)
    if stored is None:
        return None
    context = await load_context(
        conn, schema, {member: [programme]}, {member: earliest(stored.state, now)}
    )
    floors = [f for f in context.floors[member] if f.ends_at > now]
    return Standing(stored.state, context.activity[member], floors)
