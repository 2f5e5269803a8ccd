"""Use cases of the tiering service: decide with the domain, persist in the caller's transaction.

Each batch locks its customers once, reads what the rules need in a few set-based statements,
walks the events in order (each first catches its customer up to the event's time), then
writes contributions, states, history and events back in one statement per table. A customer
is a (holder, customer id) pair: the holder is the shop, or its coalition while the shop is a
member at the event's time (shared.holders); each event is applied with the holder's programme
in force at the event's time, and a customer is left as the programme of its last event says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

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
from services.tiering.domain.state import Floor, Member
from services.tiering.movements import (
    COUNTED,
    MEMBERSHIPS,
    at_shop_of,
    membership_floor,
    movement_of,
    shop_of,
)
from services.tiering.shops import TierProgrammes, UnknownShop
from shared.clock import Clock
from shared.consumer import Incoming, Rejection
from shared.db import Connection
from shared.errors import RejectedMessage
from shared.events import CloudEvent
from shared.events.times import AHEAD_MAX, ahead_of_clock
from shared.holders import Holders

# The shops' own events: a coalition has none, so one naming a coalition as its shop is refused.
SHOP_TOPICS: Final = frozenset({"shop.orders"})
_ALONE: Final = Holders()  # without a directory (tests, backfill): every shop holds its own

log = structlog.get_logger(__name__)


@dataclass
class _Batch:
    """The customers of one batch as the rules leave them, each with its programme."""

    stored: dict[Member, StoredCustomer]
    outcomes: dict[Member, Outcome]
    context: Context
    programmes: dict[Member, Programme]
    evaluated_at: datetime | None = None

    @classmethod
    def of(
        cls,
        stored: dict[Member, StoredCustomer],
        context: Context,
        programmes: Mapping[Member, Programme],
    ) -> _Batch:
        outcomes = {m: Outcome(s.state) for m, s in stored.items()}
        return cls(stored, outcomes, context, dict(programmes))

    def catch_up(self, member: Member, until: datetime) -> None:
        outcome = self.outcomes[member]
        floors = self.context.floors[member]
        activity = self.context.activity[member]
        step = advance(self.programmes[member], outcome.state, activity, floors, until)
        self.outcomes[member] = outcome.extend(step)

    def finished(self, *, after: datetime | None = None) -> list[StoredCustomer]:
        """The rows to store; `after`: the instant evaluated, which a next check must pass."""
        rows = []
        for member, outcome in self.outcomes.items():
            due = next_due(
                self.programmes[member],
                outcome.state,
                self.context.activity[member],
                self.context.floors[member],
            )
            if after is not None and due is not None and due <= after:
                # The rules left something due that they did not apply: never spin on it.
                log.error(
                    "tier_check_not_advancing",
                    shop_id=member[0],
                    customer_id=member[1],
                    due=due.isoformat(),
                )
                due = after + timedelta(hours=1)
            rows.append(replace(self.stored[member], state=outcome.state, next_check_at=due))
        return rows

    async def persist(self, conn: Connection, schema: str, now: datetime) -> int:
        outcomes = list(self.outcomes.values())
        return await persist(
            conn,
            schema,
            self.programmes,
            customers=self.finished(after=self.evaluated_at),
            changes=[c for o in outcomes for c in o.changes],
            warnings=[w for o in outcomes for w in o.warnings],
            now=now,
        )


def _entry_tiers(programmes: Mapping[Member, Programme]) -> dict[Member, str]:
    return {m: p.entry.code for m, p in programmes.items()}


def holder_of(incoming: Incoming, event: CloudEvent[Any], holders: Holders) -> str:
    """Whose account an event moves: its shop's holder at the event's time. UnknownShop for a
    shop event naming a coalition, which has no events of its own; on loyalty.* topics the
    shop named is the holder already, and a coalition holds its own account."""
    shop = shop_of(event)
    if incoming.topic in SHOP_TOPICS and holders.is_coalition(shop):
        raise UnknownShop(shop)
    return holders.at(shop, event.time)


async def apply_activity(
    conn: Connection,
    events: Sequence[Incoming],
    *,
    programmes: TierProgrammes,
    schema: str,
    clock: Clock,
    ahead_max: timedelta = AHEAD_MAX,
    holders: Holders = _ALONE,
) -> list[Rejection]:
    """Orders (or points) move the qualifying totals of their holder's account; crossing a
    threshold upgrades at once.

    An event's time counts, but never later than now; one more than `ahead_max` ahead of now
    is refused, and so is one of a shop without a tier programme. Events a backfill applied are
    in the inbox already and never reach this handler.
    """
    now = clock.now()
    rejections: list[Rejection] = []
    items: list[tuple[Incoming, Movement, Programme]] = []
    for incoming in events:
        event = incoming.event
        if event is None:
            continue
        if (ahead := ahead_of_clock(event, now, ahead_max)) is not None:
            rejections.append(Rejection(incoming, ahead))
            continue
        if event.type not in COUNTED:
            continue
        try:
            holder = holder_of(incoming, event, holders)
            programme = programmes.at(holder, event.time)
        except UnknownShop as unknown:
            rejections.append(Rejection(incoming, unknown))
            continue
        if (movement := movement_of(incoming, programme, holder=holder)) is not None:
            items.append((incoming, movement, programme))
    if not items:
        return rejections
    last: dict[Member, Programme] = {}
    seen: dict[Member, list[Programme]] = {}
    first_at: dict[Member, datetime] = {}
    for _, m, programme in items:
        member, at = (m.shop_id, m.customer_id), min(m.at, now)
        last[member] = programme
        seen.setdefault(member, []).append(programme)
        first_at[member] = min(at, first_at.get(member, at))
    stored = await lock_customers(conn, schema, _entry_tiers(last))
    keys = {(m.shop_id, m.customer_id, m.key) for _, m, _ in items}
    book = ContributionBook.of(
        await load_contributions(conn, schema, keys), await load_parked(conn, schema, keys)
    )
    starts = {m: earliest(s.state, first_at[m]) for m, s in stored.items()}
    batch = _Batch.of(stored, await load_context(conn, schema, seen, starts), last)
    rejections += [
        rejection
        for item in items
        if (rejection := _apply_one(batch, book, item, now=now)) is not None
    ]
    for dropped in book.dropped:
        log.warning(
            "parked_movement_dropped", event_id=dropped.movement.event_id, reason=dropped.reason
        )
    await save_contributions(conn, schema, [book.contributions[k] for k in sorted(book.changed)])
    await park(conn, schema, book.newly_parked)
    await release(conn, schema, book.released_stored)
    await batch.persist(conn, schema, now)
    return rejections


def _apply_one(
    batch: _Batch,
    book: ContributionBook,
    item: tuple[Incoming, Movement, Programme],
    *,
    now: datetime,
) -> Rejection | None:
    incoming, movement, programme = item
    member = (movement.shop_id, movement.customer_id)
    stored = batch.stored[member]
    where = at_shop_of(incoming.event) if incoming.event is not None else movement.shop_id
    batch.stored[member] = replace(
        stored,
        position=Position(incoming.topic, incoming.partition, incoming.offset),
        # A coalition's account: the member shop its account-level events will name.
        last_shop_id=where if where != movement.shop_id else stored.last_shop_id,
    )
    customer = Customer(batch.context.activity[member], batch.context.floors[member])
    batch.outcomes[member], refused = count_movement(
        programme, book, customer, batch.outcomes[member], movement, now=now
    )
    if refused is not None:
        return Rejection(incoming, RejectedMessage(refused.reason, error_class="CurrencyMismatch"))
    return None


async def apply_memberships(
    conn: Connection,
    events: Sequence[Incoming],
    *,
    programmes: TierProgrammes,
    schema: str,
    clock: Clock,
    holders: Holders = _ALONE,
) -> list[Rejection]:
    """membership.purchased grants its tier as a floor for the paid period, on the account of
    the shop's holder."""
    floors: list[tuple[Member, Floor, datetime]] = []
    rejections = []
    for incoming in events:
        event = incoming.event
        if event is None or event.type not in MEMBERSHIPS:
            continue
        try:
            holder = holder_of(incoming, event, holders)
            programme = programmes.at(holder, event.time)
        except UnknownShop as unknown:
            rejections.append(Rejection(incoming, unknown))
            continue
        granted = membership_floor(incoming, programme)
        if isinstance(granted, RejectedMessage):
            rejections.append(Rejection(incoming, granted))
        elif granted is not None:
            (_, customer), floor, at = granted
            floors.append(((holder, customer), floor, at))
    await set_floors(conn, floors, programmes=programmes, schema=schema, now=clock.now())
    return rejections


async def set_floors(
    conn: Connection,
    floors: Sequence[tuple[Member, Floor, datetime]],
    *,
    programmes: TierProgrammes,
    schema: str,
    now: datetime,
) -> dict[Member, StoredCustomer]:
    """Store (customer, floor, as-of) triples and bring each customer up to date with them;
    each customer under its shop's programme in force at the latest as-of time."""
    if not floors:
        return {}
    until: dict[Member, datetime] = {}
    for member, _, at in floors:
        until[member] = max(min(at, now), until.get(member, min(at, now)))
    chosen = {m: programmes.at(m[0], at) for m, at in until.items()}
    stored = await lock_customers(conn, schema, _entry_tiers(chosen))
    await save_floors(conn, schema, [(m, f) for m, f, _ in floors])
    starts = {m: earliest(s.state, until[m]) for m, s in stored.items()}
    seen = {m: [p] for m, p in chosen.items()}
    batch = _Batch.of(stored, await load_context(conn, schema, seen, starts), chosen)
    for member in stored:
        batch.catch_up(member, until[member])
    await batch.persist(conn, schema, now)
    return {(row.state.shop_id, row.state.customer_id): row for row in batch.finished()}


async def evaluate_due(
    conn: Connection,
    *,
    programmes: TierProgrammes,
    schema: str,
    now: datetime,
    limit: int,
    only: Sequence[Member] | None = None,
    holders: Holders = _ALONE,
) -> tuple[int, int]:
    """One chunk of the scheduled evaluation, over every shop with a programme; returns
    (customers evaluated, events enqueued). A coalition's member shop is skipped while it is
    a member: its customers' tiers are the coalition's now, and its own rows would only send
    stale reviews in its name; they are caught up once it leaves."""
    shops = [s for s in programmes.shops if not holders.member_now(s, now)]
    stored = await claim_due(conn, schema, now=now, limit=limit, shops=shops, only=only)
    if not stored:
        return 0, 0
    chosen = {m: programmes.at(m[0], now) for m in stored}
    starts = {m: earliest(s.state, now) for m, s in stored.items()}
    seen = {m: [p] for m, p in chosen.items()}
    batch = _Batch.of(stored, await load_context(conn, schema, seen, starts), chosen)
    batch.evaluated_at = now
    for member in stored:
        batch.catch_up(member, now)
    return len(stored), await batch.persist(conn, schema, now)
