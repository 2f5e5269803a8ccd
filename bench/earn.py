"""Benchmark of earn: drain rate, latency at an offered rate, memory, the two limits, and the
bare pipeline (the guarantees without the rules).

    .venv/bin/python -m bench.earn [--events 200000] [--customers 20000] [--partitions 4]
                                   [--shops 1]

Runs against a broker and a database of its own (127.0.0.1:19092, database loyalty_bench),
prints a table and writes bench/results/latest.json. With --shops N above 1 it also drains the
same number of events of the same customers spread over N shops, each with its own earn rate
(published through the shops service before earn starts), and checks the points per shop.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench import infra, limits, loadgen, report, shops
from bench.service import bench_service, launch_replicas, service_env
from shared.logs import configure_logging
from shared.runtime import consumer_group
from shared.settings import CommonSettings
from shared.topics import ALL_TOPICS, ensure_topics, start_group_at_end, topics_with_dlq


async def main(args: argparse.Namespace) -> dict[str, Any]:
    kafka = infra.fresh_broker()
    database = await infra.fresh_database()
    await ensure_topics(kafka, topics_with_dlq(ALL_TOPICS), partitions=args.partitions)
    figures: dict[str, Any] = {
        "events": args.events,
        "customers": args.customers,
        "partitions": args.partitions,
        "batch": args.batch,
    }
    load = loadgen.generate(args.events, args.customers, prefix="b")
    figures["preload_s"] = round(await loadgen.preload(kafka, "shop.orders", load.records), 2)
    figures["limit_consumer_eps"] = round(
        await limits.bare_consumer(kafka, "shop.orders", args.events)
    )
    figures["limit_ledger_write_rps"] = round(
        await limits.bare_ledger_write(database, load, batch=args.batch)
    )
    # What the guarantees cost without earn's rules, on the same data.
    figures["bare_pipeline"] = await limits.bare_pipeline(
        kafka, database, load, topic="shop.orders", batch=args.batch
    )
    for replicas in (1, 2):
        database = await infra.fresh_database()
        run = await drain(kafka, database, load, replicas=replicas, batch=args.batch)
        figures[f"drain_{replicas}_replica"] = run
    for rate in args.rates:
        figures[f"latency_at_{rate}_eps"] = await latency(kafka, database, rate, args.latency_s)
    lower = min(figures["limit_consumer_eps"], figures["limit_ledger_write_rps"])
    figures["drain_share_of_lower_limit"] = round(figures["drain_1_replica"]["eps"] / lower, 3)
    figures["bare_pipeline_share_of_lower_limit"] = round(
        figures["bare_pipeline"]["eps"] / lower, 3
    )
    if args.shops > 1:
        figures[f"drain_1_replica_{args.shops}_shops"] = await drain_at_shops(kafka, args)
    infra.stop_broker()
    return figures


# Bytes of write-ahead log written by the server so far.
WAL_POSITION = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"


async def drain_at_shops(kafka: str, args: argparse.Namespace) -> dict[str, Any]:
    """The drain of one replica again, the events spread over `args.shops` shops whose
    programmes earn reads from loyalty.shops; checked per (shop, customer)."""
    database = await infra.fresh_database()
    setup_s, in_force = await shops.open_shops(kafka, database, args.shops)
    # Timed once the shops' programmes are in force: each event earns at its shop's rate.
    await asyncio.sleep(max(0.0, (in_force - datetime.now(UTC)).total_seconds()) + 0.01)
    load = loadgen.generate_at_shops(args.events, args.customers, args.shops, prefix="m")
    group_prefix = f"bench-shops-{time.time_ns()}"
    # The group starts after the 1-shop load already on shop.orders: it drains this load only.
    group = consumer_group(
        CommonSettings(consumer_group_prefix=group_prefix), "earn", "shop.orders"
    )
    await start_group_at_end(kafka, group, ["shop.orders"])
    await loadgen.preload(kafka, "shop.orders", load.records)
    run = await drain(
        kafka, database, load, replicas=1, batch=args.batch, group_prefix=group_prefix
    )
    return {"shops": args.shops, "shops_setup_s": round(setup_s, 2), **run}


async def drain(
    kafka: str,
    database: str,
    load: loadgen.Load,
    *,
    replicas: int,
    batch: int,
    group_prefix: str | None = None,
) -> dict[str, Any]:
    """Start earn on the preloaded topic; time until every entry is committed and relayed."""
    group_prefix = group_prefix or f"bench-drain{replicas}-{time.time_ns()}"
    env = service_env(kafka, database, group_prefix, batch)
    services = await launch_replicas("earn", env, replicas)
    # CPU per event is steadier than the rate on a machine whose cores the broker and the
    # database share: it says what the service costs whatever else runs.
    cpu_ready = sum(s.cpu_seconds() for s in services)
    conn = await asyncpg.connect(database)
    try:
        database_ready = infra.database_cpu_seconds()
        broker_ready = infra.broker_cpu_seconds()
        wal_ready = await conn.fetchval(WAL_POSITION)
        done_at = await _wait_drained(conn, len(load.records))
        cpu = sum(s.cpu_seconds() for s in services) - cpu_ready
        database_cpu = infra.database_cpu_seconds() - database_ready
        broker_cpu = infra.broker_cpu_seconds() - broker_ready
        wal = await conn.fetchval(WAL_POSITION) - wal_ready
        first = await conn.fetchval("SELECT extract(epoch FROM min(recorded_at)) FROM earn.ledger")
        rss = [round(s.peak_rss_mb(), 1) for s in services]
        if load.expected_at_shops:
            correct = await report.verify_at_shops(conn, load.expected_at_shops)
        else:
            correct = await report.verify(conn, load.expected_points)
    finally:
        await conn.close()
        for service in services:
            service.stop()
    seconds = done_at - float(first)
    return {
        "eps": round(len(load.records) / seconds),
        "seconds": round(seconds, 2),
        "cpu_us_per_event": round(cpu * 1e6 / len(load.records), 1),
        # What PostgreSQL spends on the same drain: CPU and write-ahead log per event.
        "database_cpu_us_per_event": round(database_cpu * 1e6 / len(load.records), 1),
        "wal_bytes_per_event": round(float(wal) / len(load.records)),
        # And the broker: the service's fetches, the relay's produce requests, offset commits.
        "broker_cpu_us_per_event": round(broker_cpu * 1e6 / len(load.records), 1),
        "peak_rss_mb": rss,
        **correct,
    }


async def _wait_drained(conn: asyncpg.Connection, expected: int, timeout: float = 900) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # The seq handed out last (cheap to read; it counts rolled-back entries too, so the
        # rows are counted once it is reached).
        entries = await conn.fetchval(
            """SELECT coalesce(pg_sequence_last_value(
                          pg_get_serial_sequence('earn.ledger', 'seq')::regclass), 0)"""
        )
        if entries >= expected:
            backlog = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM earn.outbox)")
            if not backlog and await conn.fetchval("SELECT count(*) FROM earn.ledger") >= expected:
                return time.time()
        await asyncio.sleep(0.05)
    raise TimeoutError(f"earn did not drain {expected} events in {timeout}s")


async def latency(kafka: str, database: str, rate: int, seconds: float) -> dict[str, Any]:
    """Offer `rate` events per second to a running earn; latency from event time to commit."""
    group_prefix = f"bench-latency-{time.time_ns()}"
    env = service_env(kafka, database, group_prefix, 500)
    # At the end of shop.orders: the offered events must not queue behind the preloaded ones.
    group = consumer_group(
        CommonSettings(consumer_group_prefix=group_prefix), "earn", "shop.orders"
    )
    await start_group_at_end(kafka, group, ["shop.orders"])
    service = bench_service("earn", env).start()
    prefix = f"l{rate}-"
    try:
        await asyncio.sleep(5)  # joins its group and takes its partitions
        sent = await loadgen.offer(kafka, "shop.orders", rate=rate, seconds=seconds, prefix=prefix)
        conn = await asyncpg.connect(database)
        try:
            await _wait_count(conn, prefix, sent)
            row = await conn.fetchrow(
                """SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP
                          (ORDER BY extract(epoch FROM recorded_at - occurred_at)) AS p,
                          max(extract(epoch FROM recorded_at - occurred_at)) AS worst
                   FROM earn.ledger WHERE customer_id LIKE $1""",
                prefix + "%",
            )
            assert row is not None  # an aggregate returns one row
        finally:
            await conn.close()
        rss = round(service.peak_rss_mb(), 1)
    finally:
        service.stop()
    p50, p95, p99 = (round(v * 1000, 1) for v in row["p"])
    return {
        "sent": sent,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "max_ms": round(float(row["worst"]) * 1000, 1),
        "peak_rss_mb": rss,
    }


async def _wait_count(conn: asyncpg.Connection, prefix: str, expected: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        n = await conn.fetchval(
            "SELECT count(*) FROM earn.ledger WHERE customer_id LIKE $1", prefix + "%"
        )
        if n >= expected:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError(f"only part of {expected} offered events reached the ledger")


def cli() -> None:
    parser = loadgen.arguments(__doc__, count="events")
    parser.add_argument("--rates", type=int, nargs="*", default=[1000, 5000])
    parser.add_argument("--latency-s", type=float, default=10.0)
    parser.add_argument(
        "--shops",
        type=int,
        default=1,
        help="above 1: also drain the events spread over this many shops (default 1)",
    )
    args = parser.parse_args()
    configure_logging(level="warning")  # the bare pipeline's relay logs a debug line per record
    figures = asyncio.run(main(args))
    report.emit("earn", figures)


if __name__ == "__main__":
    cli()
