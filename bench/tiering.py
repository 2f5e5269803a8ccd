"""Benchmark of tiering: drain rate of paid orders to tier.changed, correctness, memory.

    .venv/bin/python -m bench.tiering [--orders 200000] [--customers 20000] [--partitions 4]
                                      [--programme services/tiering/programme.example.toml]

Pre-loads order.paid events whose amounts take a planned number of customers past each tier
threshold of the programme (a spend programme in VND), then runs tiering as a process on
them and times it until every order is applied and every tier.changed relayed. Checks each
customer's changes (count and final tier) on loyalty.tiers and in tiering's tables against a
computation of its own from the generated orders. Runs against the benchmark's broker and
database (127.0.0.1:19092, database loyalty_bench); prints a table and writes the "tiering"
section of bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench import infra, loadgen, report
from bench.service import launch_replicas, service_env
from shared.topics import ALL_TOPICS, ensure_topics, topics_with_dlq

EXAMPLE = infra.REPO / "services" / "tiering" / "programme.example.toml"
TIERS_TOPIC = "loyalty.tiers"
STEP = 1000  # VND: every amount is a multiple of it


@dataclass(frozen=True)
class Ladder:
    """The tiers of a spend programme in VND, lowest first, with the total that enters each."""

    codes: list[str]
    enter: list[Decimal]  # enter[0] = 0: every customer starts on the first tier

    @classmethod
    def read(cls, path: Path) -> Ladder:
        """Read from the TOML directly, not with tiering's own loader: the expectation stays
        independent of the code measured."""
        raw = tomllib.loads(path.read_text())
        if raw.get("basis") != "spend":
            raise SystemExit(f"{path}: the benchmark needs basis = 'spend'")
        tiers = [t for t in raw["tiers"] if not t.get("invite_only")]
        enter = [Decimal(0)] + [Decimal(t["enter"]["VND"]) for t in tiers[1:]]
        return cls([t["code"] for t in tiers], enter)

    def reached(self, total: Decimal) -> int:
        return max(i for i, threshold in enumerate(self.enter) if total >= threshold)


@dataclass(frozen=True)
class Orders:
    records: list[tuple[bytes, bytes]]
    planned: dict[str, int]  # tier code: customers whose spend reaches it and no higher
    changes: Counter[str]  # customer: tier.changed events expected
    final: dict[str, str]  # customer: tier expected at the end
    entry: str  # the first tier, where customers without a change stay


def generate(orders: int, customers: int, ladder: Ladder, *, seed: int = 11) -> Orders:
    """`orders` order.paid events over `customers`, one VND order of each in turn.

    Customers are assigned a target tier (weights k..1 for the k tiers from the lowest) and
    spend a random total inside that tier's band, split at random over their orders. Orders are
    5 ms apart and the last one an hour before the run, so that every order counts in the
    programme's window and no review falls due. Expected changes and final tiers are then
    computed from the amounts alone.
    """
    rng = random.Random(seed)  # noqa: S311 - load generation
    count = [orders // customers + (1 if c < orders % customers else 0) for c in range(customers)]
    weights = list(range(len(ladder.codes), 0, -1))
    amounts: list[list[Decimal]] = []
    targets = rng.choices(range(len(ladder.codes)), weights, k=customers)
    for c, tier in enumerate(targets):
        amounts.append(_split(rng, _total_in_band(rng, ladder, tier, count[c]), count[c]))
    start = datetime.now(UTC) - timedelta(hours=1) - timedelta(milliseconds=5 * orders)
    records = []
    for n in range(orders):
        c, k = n % customers, n // customers
        customer = f"t{c:06d}"
        at = start + timedelta(milliseconds=5 * n)
        value = loadgen.order_paid_bytes(customer, f"to{n}", amounts[c][k], at)
        records.append((customer.encode(), value))
    changes: Counter[str] = Counter()
    final = {}
    for c in range(customers):
        customer, total, tier = f"t{c:06d}", Decimal(0), 0
        for amount in amounts[c]:
            total += amount
            if (reached := ladder.reached(total)) > tier:
                changes[customer] += 1
                tier = reached
        final[customer] = ladder.codes[tier]
        if tier != targets[c]:
            raise AssertionError(f"{customer}: the plan and the computation disagree")
    planned = Counter(targets)
    by_tier = {code: planned[i] for i, code in enumerate(ladder.codes)}
    return Orders(records, by_tier, changes, final, ladder.codes[0])


def _total_in_band(rng: random.Random, ladder: Ladder, tier: int, orders: int) -> Decimal:
    low = max(ladder.enter[tier], Decimal(orders * STEP))
    high = ladder.enter[tier + 1] if tier + 1 < len(ladder.enter) else low * 3 // 2 + STEP
    if low >= high:
        raise SystemExit(f"{orders} orders of at least {STEP} VND cannot stay below {high}")
    return Decimal(rng.randrange(int(low) // STEP, int(high) // STEP) * STEP)


def _split(rng: random.Random, total: Decimal, parts: int) -> list[Decimal]:
    """`total` in `parts` random amounts, each a positive multiple of STEP."""
    units = int(total) // STEP
    cuts = sorted(rng.sample(range(1, units), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, units]
    return [Decimal((b - a) * STEP) for a, b in itertools.pairwise(bounds)]


async def main(args: argparse.Namespace) -> dict[str, Any]:
    ladder = Ladder.read(args.programme)
    kafka = infra.fresh_broker()
    await ensure_topics(kafka, topics_with_dlq(ALL_TOPICS), partitions=args.partitions)
    load = generate(args.orders, args.customers, ladder)
    figures: dict[str, Any] = {
        "orders": args.orders,
        "customers": args.customers,
        "partitions": args.partitions,
        "batch": args.batch,
        "programme": _shown(args.programme),
        "customers_by_final_tier": load.planned,
        "customers_crossing": _crossing(load.planned),
        "tier_changes_expected": load.changes.total(),
    }
    figures["preload_s"] = round(await loadgen.preload(kafka, "shop.orders", load.records), 2)
    for replicas in args.replicas:
        database = await infra.fresh_database()
        run = await drain(kafka, database, load, args, replicas=replicas)
        figures[f"drain_{replicas}_replica"] = run
    infra.stop_broker()
    return figures


def _crossing(by_final_tier: dict[str, int]) -> dict[str, int]:
    """Per threshold (tier above the first), the customers whose spend reaches it."""
    codes = list(by_final_tier)
    return {code: sum(by_final_tier[c] for c in codes[i:]) for i, code in enumerate(codes) if i}


def _shown(path: Path) -> str:
    return str(path.relative_to(infra.REPO)) if path.is_relative_to(infra.REPO) else str(path)


async def drain(
    kafka: str, database: str, load: Orders, args: argparse.Namespace, *, replicas: int
) -> dict[str, Any]:
    """Start tiering on the preloaded orders; time until every order is applied (a customer's
    stored position reaches the end of each partition) and every tier.changed is relayed."""
    reader = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)
    await reader.start()
    try:
        # The broker is fresh: every topic has the partitions main() created it with.
        tiers = [TopicPartition(TIERS_TOPIC, p) for p in range(args.partitions)]
        orders = [TopicPartition("shop.orders", p) for p in range(args.partitions)]
        before = await reader.end_offsets(tiers)
        order_ends = await reader.end_offsets(orders)
        env = service_env(kafka, database, f"bench-tiering{replicas}-{time.time_ns()}", args.batch)
        env["LOYALTY_TIERING_PROGRAMME"] = str(args.programme)
        services = await launch_replicas("tiering", env, replicas)
        conn = await asyncpg.connect(database)
        try:
            expected = load.changes.total()
            done_at = await _wait_drained(
                conn, reader, order_ends, before, expected_changes=expected
            )
            first = await conn.fetchval(
                "SELECT extract(epoch FROM min(received_at)) FROM tiering.inbox"
            )
            rss = [round(s.peak_rss_mb(), 1) for s in services]
            stored = await _verify_state(conn, load)
        finally:
            await conn.close()
            for service in services:
                service.stop()
        relayed = await _verify_relayed(reader, tiers, before, load)
    finally:
        await reader.stop()
    seconds = done_at - float(first)
    return {
        "eps": round(len(load.records) / seconds),
        "seconds": round(seconds, 2),
        "tier_changed_per_s": round(expected / seconds),
        "peak_rss_mb": rss,
        "correct": stored["correct"] and relayed["correct"],
        "state": stored,
        "relayed": relayed,
    }


async def _wait_drained(
    conn: asyncpg.Connection,
    reader: AIOKafkaConsumer,
    order_ends: dict[TopicPartition, int],
    tiers_before: dict[TopicPartition, int],
    *,
    expected_changes: int,
    timeout: float = 1800,
) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        positions = await _pairs(
            conn,
            """SELECT source_partition, max(source_offset) + 1 FROM tiering.customers
               WHERE source_topic = 'shop.orders' GROUP BY source_partition""",
        )
        if all(positions.get(tp.partition, 0) >= end for tp, end in order_ends.items()):
            outbox = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tiering.outbox)")
            ends = await reader.end_offsets(list(tiers_before))
            relayed = sum(ends[tp] - tiers_before[tp] for tp in ends)
            if not outbox and relayed >= expected_changes:
                return time.time()
        await asyncio.sleep(0.05)
    raise TimeoutError(f"tiering did not drain in {timeout}s")


async def _verify_state(conn: asyncpg.Connection, load: Orders) -> dict[str, Any]:
    """Every order applied once; per customer, the history's changes and the tier in force."""
    applied = await conn.fetchval("SELECT count(*) FROM tiering.contributions")
    inbox = await conn.fetchval("SELECT count(*) FROM tiering.inbox WHERE topic = 'shop.orders'")
    history = await _pairs(
        conn, "SELECT customer_id, count(*) FROM tiering.tier_history GROUP BY 1"
    )
    tiers = await _pairs(conn, "SELECT customer_id, tier FROM tiering.customers")
    return _compare(load, Counter(history), tiers, orders_applied=min(applied, inbox))


async def _pairs(conn: asyncpg.Connection, query: str) -> dict[Any, Any]:
    return {row[0]: row[1] for row in await conn.fetch(query)}


async def _verify_relayed(
    reader: AIOKafkaConsumer,
    partitions: list[TopicPartition],
    start: dict[TopicPartition, int],
    load: Orders,
) -> dict[str, Any]:
    """Per customer, the tier.changed records on loyalty.tiers since the run started and the
    tier the last one moved to."""
    ends = await reader.end_offsets(partitions)
    reader.assign(partitions)
    for tp in partitions:
        reader.seek(tp, start[tp])
    changes: Counter[str] = Counter()
    last: dict[str, str] = {}
    left = sum(ends[tp] - start[tp] for tp in partitions)
    while left > 0:
        batch = await reader.getmany(timeout_ms=1000, max_records=10_000)
        for tp, records in batch.items():
            for record in records:
                if record.offset >= ends[tp]:
                    continue
                left -= 1
                event = json.loads(record.value)
                if event["type"] == "tier.changed":
                    changes[event["subject"]] += 1
                    last[event["subject"]] = event["data"]["to_tier"]
    tiers = {c: last.get(c, load.entry) for c in load.final}
    return _compare(load, changes, tiers, orders_applied=None)


def _compare(
    load: Orders,
    changes: Counter[str],
    tiers: dict[str, str],
    *,
    orders_applied: int | None,
) -> dict[str, Any]:
    wrong_changes = sum(changes[c] != load.changes[c] for c in load.final)
    wrong_tier = sum(tiers.get(c) != tier for c, tier in load.final.items())
    unexpected = len(set(changes) - set(load.final))
    out: dict[str, Any] = {
        "tier_changes": changes.total(),
        "customers_wrong_changes": wrong_changes,
        "customers_wrong_tier": wrong_tier,
        "unknown_customers": unexpected,
    }
    ok = not wrong_changes and not wrong_tier and not unexpected
    if orders_applied is not None:
        out["orders_applied"] = orders_applied
        ok = ok and orders_applied == len(load.records)
    return {"correct": ok, **out}


def cli() -> None:
    parser = loadgen.arguments(__doc__, count="orders")
    parser.add_argument("--programme", type=Path, default=EXAMPLE, help="a spend programme (VND)")
    parser.add_argument("--replicas", type=int, nargs="*", default=[1, 2])
    args = parser.parse_args()
    args.programme = args.programme.resolve()
    figures = asyncio.run(main(args))
    report.emit("tiering", figures)


if __name__ == "__main__":
    cli()
