"""Replay of order.paid records through earn's batch consumer, without Kafka: the CPU of the
Python work and of PostgreSQL per event, steadier than a drain on a shared machine.

    .venv/bin/python -m bench.replay [--events 100000] [--customers 10000] [--batch 2000]
                                     [--mode plain|structured|binary]

Builds the records `bench.earn` preloads (as aiokafka hands them to a consumer, spread over 4
partitions by key; `--mode` sends them without headers as most shops do, with the structured
content-type header, or in binary mode with ce_ headers), applies them through earn's own
handler and BatchConsumer in batches, one at a time on one connection, into a database of its
own (loyalty_replay), and deletes the outbox after each batch as the relay would. The first
tenth warms up; the rest is measured: this process's CPU, the CPU of its PostgreSQL backend
(from /proc, so the database must run on this machine), and the write-ahead log written. The
garbage collector is set as a service sets it. Prints a table and writes
bench/results/latest.json.

Nothing else should run meanwhile: the backend's CPU is read from its process, but the
machine's other work still slows both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from bench import infra, loadgen, report
from bench.earn import WAL_POSITION
from bench.limits import EARN_MIGRATIONS
from services.earn.adapters.ledger import SCHEMA
from services.earn.bootstrap import definition
from services.earn.settings import EarnSettings
from shared.clock import SystemClock
from shared.consumer import BatchConsumer
from shared.db import apply_migrations
from shared.events import STRUCTURED_HEADER
from shared.logs import configure_logging
from shared.outbox import key_hash
from shared.runtime import MESSAGING_MIGRATIONS
from shared.shop_directory import ShopDirectory

DATABASE = "loyalty_replay"
PARTITIONS = 4


Headers = tuple[tuple[str, bytes], ...]


def in_mode(value: bytes, mode: str) -> tuple[bytes, Headers]:
    """A structured event's record in one mode of the CloudEvents Kafka binding."""
    if mode == "plain":
        return value, ()
    if mode == "structured":
        return value, (STRUCTURED_HEADER,)
    document = json.loads(value)
    data = json.dumps(document.pop("data"), separators=(",", ":")).encode()
    headers = [("content-type", document.pop("datacontenttype").encode())]
    headers += [(f"ce_{name}", str(text).encode()) for name, text in document.items()]
    return data, tuple(headers)


def records_of(load: loadgen.Load, mode: str = "plain") -> list[ConsumerRecord[bytes, bytes]]:
    """The records as a consumer receives them: by key to partitions, offsets in order."""
    offsets = [0] * PARTITIONS
    records = []
    for key, structured in load.records:
        partition = key_hash(key) % PARTITIONS
        offset = offsets[partition]
        value, headers = in_mode(structured, mode)
        record = ConsumerRecord(
            "shop.orders", partition, offset, 0, 0, key, value, None, len(key), len(value), headers
        )
        records.append(record)
        offsets[partition] += 1
    return records


async def main(args: argparse.Namespace) -> dict[str, Any]:
    url = await infra.fresh_database(DATABASE)
    conn = await asyncpg.connect(url)
    try:
        await apply_migrations(
            conn, SCHEMA, [("messaging", MESSAGING_MIGRATIONS), ("earn", EARN_MIGRATIONS)]
        )
    finally:
        await conn.close()
    records = records_of(loadgen.generate(args.events, args.customers, prefix="r"), args.mode)
    warm = max(args.batch, args.events // 10 // args.batch * args.batch)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as held:
            backend = await held.fetchval("SELECT pg_backend_pid()")
        # No runtime reads loyalty.shops here: the directory is told it has nothing to wait for.
        directory = ShopDirectory("earn")
        directory.caught_up.set()
        handler = definition(EarnSettings(), directory=directory).handlers["shop.orders"]
        consumer = BatchConsumer(
            service="earn", schema=SCHEMA, topic="shop.orders", handler=handler,
            clock=SystemClock(),
        )  # fmt: skip
        consumer.bind(pool, lambda: None)

        async def apply(first: int, last: int) -> None:
            for start in range(first, last, args.batch):
                await consumer.process(records[start : min(start + args.batch, last)])
                await pool.execute(f"DELETE FROM {SCHEMA}.outbox")

        await apply(0, warm)
        gc.collect()
        gc.freeze()
        gc.set_threshold(100_000, 50, 50)  # as services/cli.py sets it
        wal = await pool.fetchval(WAL_POSITION)
        cpu, database_cpu = time.process_time(), infra.process_cpu_seconds(backend)
        started = time.perf_counter()
        await apply(warm, args.events)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        database_cpu = infra.process_cpu_seconds(backend) - database_cpu
        wal = await pool.fetchval(WAL_POSITION) - wal
        entries = await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.ledger")
    finally:
        await pool.close()
    measured = args.events - warm
    return {
        "events": args.events,
        "customers": args.customers,
        "batch": args.batch,
        "mode": args.mode,
        "measured_events": measured,
        "ledger_entries": entries,
        "python_cpu_us_per_event": round(cpu * 1e6 / measured, 1),
        "database_cpu_us_per_event": round(database_cpu * 1e6 / measured, 1),
        "wal_bytes_per_event": round(float(wal) / measured),
        "wall_us_per_event": round(seconds * 1e6 / measured, 1),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--mode", choices=("plain", "structured", "binary"), default="plain")
    args = parser.parse_args()
    if args.events < 2 * args.batch:
        parser.error("--events must be at least twice --batch (a warm-up, then a measure)")
    configure_logging(level="warning")  # one debug line per applied event would be measured
    report.emit("replay", asyncio.run(main(args)))


if __name__ == "__main__":
    cli()
