"""How long the operations page takes to read a shop's dead letters: from Kafka, as it did per
view before the index, and from the console's index.

    .venv/bin/python -m bench.operations_page [--dead-letters 6000] [--requests 30]
                                              [--database loyalty_bench_operations]

`kafka`: the newest 500 records of each partition of every `.dlq` topic of the broker at
LOYALTY_KAFKA_BOOTSTRAP_SERVERS, kept to the shop `default`'s (what each view did before).
`index`: `--dead-letters` rows of made-up dead letters (most the shop's, some of other shops and
some with no shop) in `console.dead_letters` of a database of its own on LOYALTY_DATABASE_URL's
server (created, migrated, dropped), read as the page reads them. Prints the median and p95 of
each, after 3 warm-ups.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from services.console.bootstrap import MIGRATIONS
from services.console.dead_letters import Scope, read_dead_letters
from services.console.settings import ConsoleSettings
from services.dlq.records import DeadLetterReader
from shared.db import apply_migrations, create_pool
from shared.kafka_connection import KafkaConnection

SHOP = "default"
NEWEST = 500


async def timed(read: Callable[[], Awaitable[object]], requests: int) -> list[float]:
    for _ in range(3):
        await read()
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        await read()
        times.append((time.perf_counter() - start) * 1000)
    return times


def summary(name: str, times: list[float], note: str) -> str:
    p95 = sorted(times)[max(0, round(len(times) * 0.95) - 1)]
    return f"{name}: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms ({note})"


async def from_kafka(kafka: KafkaConnection, requests: int) -> str:
    scope = Scope(SHOP, shopless=False)
    counted: list[int] = []

    async def read() -> object:
        async with DeadLetterReader(kafka) as reader:
            found = await reader.read(scope.selection().topics, newest=NEWEST)
        counted.append(len(found))
        selection = scope.selection()
        return [d for d in found if selection.matches(d)]

    times = await timed(read, requests)
    return summary("kafka", times, f"{counted[-1]} dead letters read per view")


async def from_index(server: str, database: str, dead_letters: int, requests: int) -> str:
    admin = await asyncpg.connect(server)
    await admin.execute(f'DROP DATABASE IF EXISTS "{database}"')
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = server.rsplit("/", 1)[0] + f"/{database}"
    pool = await create_pool(url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, "console", [("console", MIGRATIONS)])
            await conn.executemany(
                """INSERT INTO console.dead_letters VALUES
                   ($1, $2, $3, $7, $4, 'shop.orders', 'earn', $5, 'no earn rate for EUR',
                    $6, NULL)""",
                list(_rows(dead_letters)),
            )
            await conn.execute("ANALYZE console.dead_letters")
        scope = Scope(SHOP, shopless=False)

        async def read() -> object:
            return await read_dead_letters(pool, scope, topic=None, error_class=None, shown=200)

        times = await timed(read, requests)
    finally:
        await pool.close()
        await admin.execute(f'DROP DATABASE "{database}"')
        await admin.close()
    return summary("index", times, f"{dead_letters} dead letters indexed")


def _rows(count: int) -> list[tuple[object, ...]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    shops = [SHOP] * 8 + ["another-shop", None]
    return [
        (
            "shop.orders.dlq",
            n % 4,
            n // 4,
            shops[n % len(shops)],
            ("NoEarnRate", "UnknownShop", "InvalidEvent")[n % 3],
            start + timedelta(seconds=n),
            int((start + timedelta(seconds=n)).timestamp() * 1000),
        )
        for n in range(count)
    ]


async def main(args: argparse.Namespace) -> None:
    settings = ConsoleSettings()
    print(await from_kafka(KafkaConnection.from_settings(settings), args.requests))
    server = settings.database_url.get_secret_value()
    print(await from_index(server, args.database, args.dead_letters, args.requests))


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dead-letters", type=int, default=6000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--database", default="loyalty_bench_operations")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    cli()
