"""The two limits the service is compared with: reading the topic, and writing the ledger rows."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer

from bench.loadgen import VND_RATE, Load
from services.earn.domain.orders import units_points as points_for
from shared.db import apply_migrations
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


async def _write_batch(
    conn: asyncpg.Connection, schema: str, rows: list[tuple[str, int, int]]
) -> None:
    totals: dict[str, int] = {}
    for customer, points, _ in rows:
        totals[customer] = totals.get(customer, 0) + points
    customers = sorted(totals)
    async with conn.transaction():
        balances = await conn.fetch(
            f"""INSERT INTO {schema}.accounts AS a (customer_id, points_balance, lifetime_earned)
                SELECT * FROM unnest($1::text[], $2::bigint[], $2::bigint[])
                ON CONFLICT (customer_id) DO UPDATE
                   SET points_balance = a.points_balance + excluded.points_balance,
                       lifetime_earned = a.lifetime_earned + excluded.lifetime_earned
                RETURNING customer_id, points_balance""",
            customers,
            [totals[c] for c in customers],
        )
        running = {
            r["customer_id"]: r["points_balance"] - totals[r["customer_id"]] for r in balances
        }
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
