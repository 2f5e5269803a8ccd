"""Benchmark of the outbox relay alone: rows already in the outbox, relayed to Kafka.

    .venv/bin/python -m bench.relay [--rows 100000] [--keys 20000] [--partitions 4]

Fills the outbox of a schema of its own in the benchmark's database (loyalty_bench) with
points.earned-sized records (`--rows` of them, written 500 at a time as earn writes a
partition's share of a batch), then times one relay (the service's own OutboxRelay, acks=all,
idempotent producer) until the outbox is empty, with its CPU time per record. Runs against
the benchmark's broker (127.0.0.1:19092, fresh storage); prints a table and writes
bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from bench import infra, report
from shared.db import apply_migrations, create_pool
from shared.logs import configure_logging
from shared.outbox import OutboxMessage, OutboxRelay, enqueue
from shared.runtime import MESSAGING_MIGRATIONS
from shared.topics import ensure_topics

SCHEMA = "relay_bench"
TOPIC = "bench.relay"


async def main(args: argparse.Namespace) -> dict[str, Any]:
    kafka = infra.fresh_broker()
    database = await infra.fresh_database()
    await ensure_topics(kafka, [TOPIC], partitions=args.partitions)
    pool = await create_pool(database)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, SCHEMA, [("messaging", MESSAGING_MIGRATIONS)])
        value = b'{"specversion":"1.0","type":"points.earned","data":{' + b"x" * 420 + b"}}"
        async with pool.acquire() as conn, conn.transaction():
            for start in range(0, args.rows, 500):
                rows = range(start, min(start + 500, args.rows))
                messages = [OutboxMessage(TOPIC, b"c%d" % (i % args.keys), value) for i in rows]
                await enqueue(conn, SCHEMA, messages)
        relay = OutboxRelay(pool=pool, schema=SCHEMA, kafka=kafka, service="bench")
        started, cpu = time.perf_counter(), time.process_time()
        await relay.start()
        while await pool.fetchval(f"SELECT EXISTS (SELECT 1 FROM {SCHEMA}.outbox)"):  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        await relay.stop()
    finally:
        await pool.close()
        infra.stop_broker()
    return {
        "rows": args.rows,
        "keys": args.keys,
        "partitions": args.partitions,
        "seconds": round(seconds, 2),
        "records_per_s": round(args.rows / seconds),
        # The process runs the relay only, apart from the loop polling the outbox every 20 ms.
        "cpu_us_per_record": round(cpu * 1e6 / args.rows, 1),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=20_000)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    configure_logging(level="warning")  # one debug line per relayed record would be measured
    report.emit("relay", asyncio.run(main(args)))


if __name__ == "__main__":
    cli()
