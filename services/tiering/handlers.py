"""Use cases of the tiering service: decide with the domain, persist in the caller's transaction.

Each batch locks its customers once, reads what the rules need in a few set-based statements,
walks the events in order (each first catches its customer up to the event's time), then
writes contributions, states, history and events back in one statement per table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from services.tiering.adapters.context import Context, earliest, load_context, persist
from services.tiering.adapters.contributions import (
    load_contributions,
    load_parked,
    park,
    release,
    save_contributions,
)
from services.tiering.adapters.customers import (
    Position,
    StoredCustomer,
    claim_due,
    lock_customers,
)
from services.tiering.adapters.floors import save_floors
from services.tiering.domain.contributions import ContributionBook, Movement
from services.tiering.domain.counting import Customer, count_movement
from services.tiering.domain.lifecycle import Outcome, advance, next_due
from services.tiering.domain.rules import Programme
from services.tiering.domain.state import Floor
from services.tiering.movements import membership_floor, movement_of
from shared.clock import Clock
from shared.consumer import Incoming, Rejection
from shared.db import Connection
from shared.errors import RejectedMessage
from shared.events.times import AHEAD_MAX, ahead_of_clock

log = structlog.get_logger(__name__)


@dataclass
class _Batch:
    """The customers of one batch as the rules leave them."""

    stored: dict[str, StoredCustomer]
    outcomes: dict[str, Outcome]
    context: Context
    evaluated_at: datetime | None = None

    @classmethod
    def of(cls, stored: dict[str, StoredCustomer], context: Context) -> _Batch:
        return cls(stored, {c: Outcome(s.state) for c, s in stored.items()}, context)

    def catch_up(self, programme: Programme, customer_id: str, until: datetime) -> None:
        outcome = self.outcomes[customer_id]
        floors = self.context.floors[customer_id]
        activity = self.context.activity[customer_id]
        step = advance(programme, outcome.state, activity, floors, until)
        self.outcomes[customer_id] = outcome.extend(step)

    def finished(
        self, programme: Programme, *, after: datetime | None = None
    ) -> list[StoredCustomer]:
        """The rows to store; `after`: the instant evaluated, which a next check must pass."""
        rows = []
        for customer_id, outcome in self.outcomes.items():
            due = next_due(
                programme,
                outcome.state,
                self.context.activity[customer_id],
                self.context.floors[customer_id],
            )
            if after is not None and due is not None and due <= after:
                # The rules left something due that they did not apply: never spin on it.
                log.error("tier_check_not_advancing", customer_id=customer_id, due=due.isoformat())
                due = after + timedelta(hours=1)
            rows.append(replace(self.stored[customer_id], state=outcome.state, next_check_at=due))
        return rows

    async def persist(
        self, conn: Connection, schema: str, programme: Programme, now: datetime
    ) -> int:
        outcomes = list(self.outcomes.values())
        return await persist(
            conn,
            schema,
            programme,
            customers=self.finished(programme, after=self.evaluated_at),
            changes=[c for o in outcomes for c in o.changes],
            warnings=[w for o in outcomes for w in o.warnings],
            now=now,
        )


async def apply_activity(
    conn: Connection,
    events: Sequence[Incoming],
    *,
    programme: Programme,
    schema: str,
    clock: Clock,
    ahead_max: timedelta = AHEAD_MAX,
) -> list[Rejection]:
    """Orders (or points) move the qualifying totals; crossing a threshold upgrades at once.

    An event's time counts, but never later than now; one more than `ahead_max` ahead of now
    is refused. Events a backfill applied are in the inbox already and never reach this handler.
    """
    now = clock.now()
    ahead = [(i, e) for i in events if i.event and (e := ahead_of_clock(i.event, now, ahead_max))]
    refused = {id(i) for i, _ in ahead}
    items = [
        (i, m)
        for i in events
        if id(i) not in refused and (m := movement_of(i, programme)) is not None
    ]
    if not items:
        return [Rejection(i, e) for i, e in ahead]
    stored = await lock_customers(
        conn, schema, {m.customer_id for _, m in items}, programme.entry.code
    )
    keys = {(m.customer_id, m.key) for _, m in items}
    book = ContributionBook.of(
        await load_contributions(conn, schema, keys), await load_parked(conn, schema, keys)
    )
    first_at: dict[str, datetime] = {}
    for _, m in items:
        at = min(m.at, now)
        first_at[m.customer_id] = min(at, first_at.get(m.customer_id, at))
    starts = {
        c: earliest(s.state, *([first_at[c]] if c in first_at else [])) for c, s in stored.items()
    }
    batch = _Batch.of(stored, await load_context(conn, schema, programme, starts))
    rejections = [Rejection(i, e) for i, e in ahead] + [
        rejection
        for incoming, movement in items
        if (rejection := _apply_one(programme, batch, book, (incoming, movement), now=now))
        is not None
    ]
    for dropped in book.dropped:
        log.warning(
            "parked_movement_dropped", event_id=dropped.movement.event_id, reason=dropped.reason
        )
    await save_contributions(conn, schema, [book.contributions[k] for k in sorted(book.changed)])
    await park(conn, schema, book.newly_parked)
    await release(conn, schema, book.released_stored)
    await batch.persist(conn, schema, programme, now)
    return rejections


def _apply_one(
    programme: Programme,
    batch: _Batch,
    book: ContributionBook,
    item: tuple[Incoming, Movement],
    *,
    now: datetime,
) -> Rejection | None:
    incoming, movement = item
    customer_id = movement.customer_id
    stored = batch.stored[customer_id]
    batch.stored[customer_id] = replace(
        stored, position=Position(incoming.topic, incoming.partition, incoming.offset)
    )
    customer = Customer(batch.context.activity[customer_id], batch.context.floors[customer_id])
    batch.outcomes[customer_id], refused = count_movement(
        programme, book, customer, batch.outcomes[customer_id], movement, now=now
    )
    if refused is not None:
        return Rejection(incoming, RejectedMessage(refused.reason, error_class="CurrencyMismatch"))
    return None


async def apply_memberships(
    conn: Connection,
    events: Sequence[Incoming],
    *,
    programme: Programme,
    schema: str,
    clock: Clock,
) -> list[Rejection]:
    """membership.purchased grants its tier as a floor for the paid period."""
    floors: list[tuple[str, Floor, datetime]] = []
    rejections = []
    for incoming in events:
        granted = membership_floor(incoming, programme)
        if isinstance(granted, RejectedMessage):
            rejections.append(Rejection(incoming, granted))
        elif granted is not None:
            floors.append(granted)
    await set_floors(conn, floors, programme=programme, schema=schema, now=clock.now())
    return rejections


async def set_floors(
    conn: Connection,
    floors: Sequence[tuple[str, Floor, datetime]],
    *,
    programme: Programme,
    schema: str,
    now: datetime,
) -> dict[str, StoredCustomer]:
    """Store (customer, floor, as-of) triples and bring each customer up to date with them."""
    if not floors:
        return {}
    stored = await lock_customers(conn, schema, {c for c, _, _ in floors}, programme.entry.code)
    await save_floors(conn, schema, [(c, f) for c, f, _ in floors])
    until: dict[str, datetime] = {}
    for customer_id, _, at in floors:
        until[customer_id] = max(min(at, now), until.get(customer_id, min(at, now)))
    starts = {c: earliest(s.state, until[c]) for c, s in stored.items()}
    batch = _Batch.of(stored, await load_context(conn, schema, programme, starts))
    for customer_id in stored:
        batch.catch_up(programme, customer_id, until[customer_id])
    await batch.persist(conn, schema, programme, now)
    return {row.state.customer_id: row for row in batch.finished(programme)}


async def evaluate_due(
    conn: Connection,
    *,
    programme: Programme,
    schema: str,
    now: datetime,
    limit: int,
    only: Sequence[str] | None = None,
) -> tuple[int, int]:
    """One chunk of the scheduled evaluation; returns (customers evaluated, events enqueued)."""
    stored = await claim_due(conn, schema, now=now, limit=limit, only=only)
    if not stored:
        return 0, 0
    starts = {c: earliest(s.state, now) for c, s in stored.items()}
    batch = _Batch.of(stored, await load_context(conn, schema, programme, starts))
    batch.evaluated_at = now
    for customer_id in stored:
        batch.catch_up(programme, customer_id, now)
    return len(stored), await batch.persist(conn, schema, programme, now)
