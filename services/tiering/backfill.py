"""Backfill: recompute every tier of one shop from a replay of the basis topic, then merge the
differences.

The replay runs the live handlers into a schema of its own (tiering_backfill), from the
topic's first offsets up to the end offsets taken at the start, then evaluates it as of now.
Only the shop's records are applied. Each recomputed customer then replaces the live one, in
chunks: contributions, parked movements and state; a tier.changed (reason "backfill") is
published only where the tier in force differs. Customers the live consumers moved past the
replay meanwhile are left alone and counted; running the backfill again picks them up. A
second run changes nothing.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Final

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer
from tqdm import tqdm

from services.tiering.adapters.context import earliest, load_context, persist
from services.tiering.adapters.customers import StoredCustomer, lock_customers, stored
from services.tiering.bootstrap import MIGRATIONS, SCHEMA, basis_topic
from services.tiering.domain.activity import Activity, window_totals
from services.tiering.domain.in_force import settle
from services.tiering.domain.lifecycle import next_due
from services.tiering.domain.rules import Programme
from services.tiering.domain.state import Floor, Member, TierChange, TierState
from services.tiering.evaluation import run_evaluation
from services.tiering.handlers import apply_activity
from services.tiering.movements import shop_of
from services.tiering.shops import TierProgrammes
from shared.clock import Clock
from shared.consumer import BatchConsumer, BatchHandler, Incoming, Rejection
from shared.db import Connection, apply_migrations
from shared.errors import LoyaltyError
from shared.kafka_connection import KafkaConnection, kafka_connection
from shared.runtime import MESSAGING_MIGRATIONS

log = structlog.get_logger(__name__)

SHADOW: Final = "tiering_backfill"
_LOCK: Final = int.from_bytes(hashlib.sha256(b"tiering:backfill").digest()[:8], "big", signed=True)
_MERGE_CHUNK: Final = 1000


class BackfillBusy(LoyaltyError):
    """Another backfill holds the lock."""


@dataclass(frozen=True, slots=True)
class BackfillReport:
    records: int
    customers: int
    changed: int
    skipped: int


async def backfill(
    pool: asyncpg.Pool,
    *,
    kafka: KafkaConnection | str,
    programmes: TierProgrammes,
    shop_id: str,
    clock: Clock,
    customers: Collection[str] | None = None,
    batch_size: int = 2000,
    progress: bool = True,
) -> BackfillReport:
    """Replay, recompute and merge the shop's customers; `customers` limits all three to
    those ids. Raises UnknownShop for a shop without a tier programme."""
    programme = programmes.at(shop_id, clock.now())
    async with pool.acquire() as lock:
        if not await lock.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK):
            raise BackfillBusy("another tiering backfill is running")
        try:
            await _prepare_shadow(pool, shop_id, customers)
            records = await _replay(
                pool,
                kafka_connection(kafka),
                basis_topic(programme),
                handler=partial(_replayed, programmes=programmes, shop_id=shop_id, clock=clock),
                clock=clock,
                customers=customers,
                batch_size=batch_size,
                progress=progress,
            )
            now = clock.now()
            await run_evaluation(
                pool,
                programmes=programmes,
                schema=SHADOW,
                now=now,
                chunk=_MERGE_CHUNK,
                parked_retention_days=36_500,
            )
            merged, changed, skipped = await _merge(pool, programmes, shop_id, now)
        finally:
            await lock.execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE")
            await lock.execute("SELECT pg_advisory_unlock($1)", _LOCK)
    report = BackfillReport(records, merged, changed, skipped)
    log.info(
        "tiering_backfill_done", records=records, customers=merged, changed=changed, skipped=skipped
    )
    return report


async def _prepare_shadow(
    pool: asyncpg.Pool, shop_id: str, customers: Collection[str] | None
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(f"DROP SCHEMA IF EXISTS {SHADOW} CASCADE")
        await apply_migrations(
            conn, SHADOW, [("messaging", MESSAGING_MIGRATIONS), ("tiering", MIGRATIONS)]
        )
        # Floors are not in the topic: the replay starts from the live ones.
        await conn.execute(
            f"""INSERT INTO {SHADOW}.floors SELECT * FROM {SCHEMA}.floors
                WHERE shop_id = $2 AND ($1::text[] IS NULL OR customer_id = ANY($1::text[]))""",
            None if customers is None else list(customers),
            shop_id,
        )
        # The events the replay applied, per customer: a merged customer's go to the live
        # inbox with its state, so that the live consumers skip them if they get there later.
        await conn.execute(
            f"""CREATE TABLE {SHADOW}.applied (
                    event_id    text PRIMARY KEY,
                    topic       text NOT NULL,
                    customer_id text NOT NULL)"""
        )
        await conn.execute(f"CREATE INDEX ON {SHADOW}.applied (customer_id)")


async def _replayed(
    conn: Connection,
    events: Sequence[Incoming],
    *,
    programmes: TierProgrammes,
    shop_id: str,
    clock: Clock,
) -> list[Rejection]:
    """The live handler, into the shadow schema, on the shop's events; notes which events it
    applied for whom."""
    events = [e for e in events if e.event is not None and shop_of(e.event) == shop_id]
    refused = await apply_activity(conn, events, programmes=programmes, schema=SHADOW, clock=clock)
    kept = {r.incoming.inbox_key for r in refused}
    applied = [e for e in events if e.event is not None and e.inbox_key not in kept]
    await conn.execute(
        f"""INSERT INTO {SHADOW}.applied (event_id, topic, customer_id)
            SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ON CONFLICT DO NOTHING""",
        [e.inbox_key for e in applied],
        [e.topic for e in applied],
        [e.event.subject for e in applied if e.event is not None],
    )
    return refused


async def _replay(
    pool: asyncpg.Pool,
    kafka: KafkaConnection,
    topic: str,
    *,
    handler: BatchHandler,
    clock: Clock,
    customers: Collection[str] | None,
    batch_size: int,
    progress: bool,
) -> int:
    """Feed the topic, from its first offsets to the end offsets of now, to the shadow."""
    consumer = BatchConsumer(
        service="tiering-backfill", schema=SHADOW, topic=topic, handler=handler, clock=clock
    )
    consumer.bind(pool, lambda: None)
    wanted = None if customers is None else {c.encode() for c in customers}
    # Without a group every partition of the topic is assigned to this reader as it starts.
    reader = AIOKafkaConsumer(
        topic, **kafka.client_options(), enable_auto_commit=False, group_id=None
    )
    await reader.start()
    try:
        tps = sorted(reader.assignment())
        starts, ends = await reader.beginning_offsets(tps), await reader.end_offsets(tps)
        for tp in tps:
            reader.seek(tp, starts[tp])
        pending = {tp for tp in tps if ends[tp] > starts[tp]}
        total = sum(ends[tp] - starts[tp] for tp in tps)
        bar = tqdm(
            total=total, unit="rec", desc=f"replay {topic}", disable=not progress, file=sys.stderr
        )
        with bar:
            while pending:
                fetched = await reader.getmany(*pending, timeout_ms=1000, max_records=batch_size)
                batch = []
                for tp, records in fetched.items():
                    kept = [r for r in records if r.offset < ends[tp]]
                    bar.update(len(kept))
                    batch += [r for r in kept if wanted is None or r.key in wanted]
                    if await reader.position(tp) >= ends[tp]:
                        pending.discard(tp)
                if batch:
                    await consumer.process(batch)
    finally:
        await reader.stop()
    return int(total)


async def _merge(
    pool: asyncpg.Pool, programmes: TierProgrammes, shop_id: str, now: datetime
) -> tuple[int, int, int]:
    """Replace the shop's live customers by their recomputed selves, a chunk per transaction.

    The shadow holds the shop's customers only: the replay applied no other shop's records.
    """
    programme = programmes.at(shop_id, now)
    merged = changed = skipped = 0
    after = ""
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"""SELECT * FROM {SHADOW}.customers WHERE shop_id = $1 AND customer_id > $2
                    ORDER BY customer_id LIMIT $3""",
                shop_id,
                after,
                _MERGE_CHUNK,
            )
            if not rows:
                break
            after = rows[-1]["customer_id"]
            done, moved, left = await _merge_chunk(
                conn, programme, shop_id, [stored(r) for r in rows], now
            )
        merged, changed, skipped = merged + done, changed + moved, skipped + left
    return merged, changed, skipped


async def _merge_chunk(
    conn: Connection,
    programme: Programme,
    shop_id: str,
    shadow: list[StoredCustomer],
    now: datetime,
) -> tuple[int, int, int]:
    entry = programme.entry.code
    live = await lock_customers(conn, SCHEMA, {s.state.member: entry for s in shadow})
    ready = [s for s in shadow if not _moved_on(live[s.state.member], s)]
    ready_ids = [s.state.customer_id for s in ready]
    # In the transaction that hands the state over: a live consumer that reaches one of these
    # events now waits for it and then finds it applied.
    await conn.execute(
        f"""INSERT INTO {SCHEMA}.inbox (event_id, topic)
            SELECT event_id, topic FROM {SHADOW}.applied WHERE customer_id = ANY($1::text[])
            ON CONFLICT DO NOTHING""",
        ready_ids,
    )
    for table in ("contributions", "parked_movements"):
        await conn.execute(
            f"DELETE FROM {SCHEMA}.{table} WHERE shop_id = $2 AND customer_id = ANY($1::text[])",
            ready_ids,
            shop_id,
        )
        await conn.execute(
            f"""INSERT INTO {SCHEMA}.{table}
                SELECT * FROM {SHADOW}.{table} WHERE customer_id = ANY($1::text[])""",
            ready_ids,
        )
    members: list[Member] = [s.state.member for s in ready]
    starts = {s.state.member: earliest(s.state, now) for s in ready}
    context = await load_context(conn, SCHEMA, {m: [programme] for m in members}, starts)
    rows, changes = [], []
    for recomputed in ready:
        member = recomputed.state.member
        row, change = _take_over(
            programme,
            recomputed,
            live[member].state,
            context.activity[member],
            context.floors[member],
            now=now,
        )
        rows.append(row)
        changes += [change] if change is not None else []
    await persist(
        conn,
        SCHEMA,
        dict.fromkeys(members, programme),
        customers=rows,
        changes=changes,
        warnings=[],
        now=now,
    )
    return len(ready), len(changes), len(shadow) - len(ready)


def _take_over(
    programme: Programme,
    recomputed: StoredCustomer,
    published: TierState,
    activity: Activity,
    floors: list[Floor],
    *,
    now: datetime,
) -> tuple[StoredCustomer, TierChange | None]:
    """The recomputed row, told what was published; a change where the tier in force differs.

    Floors are read live again, as one may have been set while the replay ran.
    """
    at = max(now, recomputed.state.evaluated_until or now)
    told = replace(recomputed.state, tier=published.tier, tier_since=published.tier_since)
    totals = window_totals(programme, activity, at)
    state, change = settle(programme, told, floors, at, totals, reason=None)
    due = next_due(programme, state, activity, floors)
    row = replace(recomputed, state=state, next_check_at=due)
    return row, None if change is None else replace(change, reason="backfill")


def _moved_on(live: StoredCustomer, recomputed: StoredCustomer) -> bool:
    """The live consumers applied records of this customer that the replay did not reach.

    Positions only decide whether a customer is merged: a stale one (from before a topic was
    created again) leaves the customer as it is, counted as skipped, and loses nothing.
    """
    here, there = live.position, recomputed.position
    if (
        here is None
        or there is None
        or (here.topic, here.partition) != (there.topic, there.partition)
    ):
        return False
    return here.offset > there.offset
