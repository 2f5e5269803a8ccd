"""The two limits the service is compared with (reading the topic, writing the ledger rows), and
the bare pipeline: the service's guarantees alone, without its rules."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from pydantic_core import to_json

from bench import infra
from bench.loadgen import VND_RATE, Load
from services.earn.domain.orders import units_points as points_for
from shared.db import Connection, apply_migrations, create_pool
from shared.outbox import OutboxMessage, OutboxRelay, enqueue
from shared.runtime import MESSAGING_MIGRATIONS

EARN_MIGRATIONS = Path(__file__).resolve().parent.parent / "services" / "earn" / "migrations"
LEDGER_COLUMNS = [
    "entry_id", "customer_id", "kind", "delta", "balance_after",
    "reason", "order_id", "source_event_id", "occurred_at",
]  # fmt: skip


async def bare_consumer(bootstrap: str, topic: str, count: int) -> float:
    """Events per second of an aiokafka consumer that reads `count` records and does nothing."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    try:
        await consumer.seek_to_beginning()
        seen = 0
        started = time.perf_counter()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def bare_ledger_write(database_url: str, load: Load, *, batch: int) -> float:
    """Rows per second of asyncpg writing the same ledger rows into the same tables, with the
    same constraints and triggers (account upsert + COPY into the ledger), `batch` rows a
    transaction."""
    rows = [(key.decode(), _points(value), n) for n, (key, value) in enumerate(load.records)]
    conn = await asyncpg.connect(database_url)
    try:
        schema = "limit_probe"
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await apply_migrations(
            conn, schema, [("messaging", MESSAGING_MIGRATIONS), ("earn", EARN_MIGRATIONS)]
        )
        started = time.perf_counter()
        for first in range(0, len(rows), batch):
            await _write_batch(conn, schema, rows[first : first + batch])
        return len(rows) / (time.perf_counter() - started)
    finally:
        await conn.close()


def _points(value: bytes) -> int:
    amount = Decimal(json.loads(value)["data"]["totals"]["total"]["amount"])
    return points_for(amount, VND_RATE)


async def _balances_before(
    conn: Connection, schema: str, moves: list[tuple[str, int]]
) -> dict[str, int]:
    """Upsert the balances of (customer, points) moves, in customer order; each customer's
    balance before them."""
    totals: dict[str, int] = {}
    for customer, points in moves:
        totals[customer] = totals.get(customer, 0) + points
    customers = sorted(totals)
    balances = await conn.fetch(
        f"""INSERT INTO {schema}.accounts AS a (customer_id, points_balance, lifetime_earned)
            SELECT * FROM unnest($1::text[], $2::bigint[], $2::bigint[])
            ON CONFLICT (shop_id, customer_id) DO UPDATE
               SET points_balance = a.points_balance + excluded.points_balance,
                   lifetime_earned = a.lifetime_earned + excluded.lifetime_earned
            RETURNING customer_id, points_balance""",
        customers,
        [totals[c] for c in customers],
    )
    return {r["customer_id"]: r["points_balance"] - totals[r["customer_id"]] for r in balances}


async def _write_batch(
    conn: asyncpg.Connection, schema: str, rows: list[tuple[str, int, int]]
) -> None:
    async with conn.transaction():
        running = await _balances_before(conn, schema, [(c, p) for c, p, _ in rows])
        now = datetime.now(UTC)
        records = []
        for customer, points, n in rows:
            running[customer] += points
            records.append(
                (f"limit:{n}", customer, "earned", points, running[customer], "order.paid",
                 f"o{n}", f"e{n}", now)
            )  # fmt: skip
        await conn.copy_records_to_table(
            "ledger", schema_name=schema, columns=LEDGER_COLUMNS, records=records
        )


async def bare_pipeline(
    bootstrap: str, database_url: str, load: Load, *, topic: str, batch: int
) -> dict[str, float]:
    """The guarantees alone, with none of earn's rules: the plainest code that keeps them.

    One process reads the topic (a consumer group of its own, offsets committed after each
    batch's transaction), decodes each record with `json.loads`, and applies a batch in one
    transaction: the event ids claimed in the inbox, the balances upserted, the ledger rows
    copied, one outbox row holding a points message per entry. The service's own outbox relay
    publishes those (acks=all, idempotent producer) from the same process meanwhile. Timed from
    the first record read until the ledger holds every row and the outbox is empty; with the CPU
    of this process, of PostgreSQL and of the broker per event.
    """
    schema = "pipeline_probe"
    pool = await create_pool(database_url, min_size=2, max_size=2)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-pipeline-{time.time_ns()}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    relay = OutboxRelay(pool=pool, schema=schema, kafka=bootstrap, service="bench")
    thresholds = gc.get_threshold()
    try:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await apply_migrations(
                conn, schema, [("messaging", MESSAGING_MIGRATIONS), ("earn", EARN_MIGRATIONS)]
            )
        await consumer.start()
        await relay.start()
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 50)  # as services/cli.py sets it
        cpu = (time.process_time(), infra.database_cpu_seconds(), infra.broker_cpu_seconds())
        started = None
        applied = 0
        while applied < len(load.records):
            fetched = await consumer.getmany(timeout_ms=1000, max_records=batch)
            records = [r for part in fetched.values() for r in part]
            if not records:
                continue
            started = started or time.perf_counter()
            async with pool.acquire() as conn, conn.transaction():
                applied += await _pipeline_batch(conn, schema, records)
            relay.wake()
            await consumer.commit()
        async with pool.acquire() as conn:
            while await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {schema}.outbox)"):  # noqa: ASYNC110
                await asyncio.sleep(0.005)
        seconds = time.perf_counter() - (started or 0.0)
        own, database, broker = (
            time.process_time() - cpu[0],
            infra.database_cpu_seconds() - cpu[1],
            infra.broker_cpu_seconds() - cpu[2],
        )
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        await relay.stop()
        await consumer.stop()
        await pool.close()
    events = len(load.records)
    return {
        "eps": round(events / seconds),
        "cpu_us_per_event": round(own * 1e6 / events, 1),
        "database_cpu_us_per_event": round(database * 1e6 / events, 1),
        "broker_cpu_us_per_event": round(broker * 1e6 / events, 1),
    }


async def _pipeline_batch(
    conn: Connection, schema: str, records: list[ConsumerRecord[bytes, bytes]]
) -> int:
    """One batch of the bare pipeline, inside the caller's transaction; the events applied."""
    decoded: dict[str, Any] = {}
    for record in records:
        event = json.loads(record.value or b"")
        decoded.setdefault(event["id"], event)
    fresh = {
        row["event_id"]
        for row in await conn.fetch(
            f"""INSERT INTO {schema}.inbox (event_id, topic) SELECT unnest($1::text[]), $2
                ON CONFLICT DO NOTHING RETURNING event_id""",
            list(decoded),
            records[0].topic,
        )
    }
    events = [e for event_id, e in decoded.items() if event_id in fresh]
    points = [points_for(Decimal(e["data"]["totals"]["total"]["amount"]), VND_RATE) for e in events]
    running = await _balances_before(
        conn, schema, [(e["subject"], p) for e, p in zip(events, points, strict=True)]
    )
    rows, messages = [], []
    for event, earned in zip(events, points, strict=True):
        customer = event["subject"]
        running[customer] += earned
        entry_id = f"earn:{event['id']}"
        at = datetime.fromisoformat(event["time"])
        rows.append(
            (entry_id, customer, "earned", earned, running[customer], "order.paid",
             event["data"]["order_id"], event["id"], at)
        )  # fmt: skip
        message = {  # the shape and size of earn's points.earned
            "specversion": "1.0",
            "id": entry_id,
            "source": "loyalty/earn",
            "type": "points.earned",
            "time": event["time"],
            "subject": customer,
            "datacontenttype": "application/json",
            "data": {
                "entry_id": entry_id,
                "customer_id": customer,
                "delta": earned,
                "balance_after": running[customer],
                "reason": "order.paid",
                "order_id": event["data"]["order_id"],
                "source_event_id": event["id"],
                "balance_kind": "points",
                "currency": None,
                "expires_at": None,
            },
        }
        messages.append(
            OutboxMessage("loyalty.points", customer.encode(), to_json(message), cause=event["id"])
        )
    await conn.copy_records_to_table(
        "ledger", schema_name=schema, columns=LEDGER_COLUMNS, records=rows
    )
    await enqueue(conn, schema, messages)
    return len(events)
