"""This checkout's earn against another checkout's (an earlier release) in the same run: drains
of the same load, alternated, each on a fresh broker and database, measured by this harness.

    .venv/bin/python -m bench.compare --baseline ../loyalty-base [--replicas 2] [--rounds 3]
                                      [--events 100000] [--customers 10000] [--batch 2000]

The baseline is a checkout with its own environment (`git worktree add ../loyalty-base <commit>`,
then `uv sync --frozen` there); its earn runs from its directory with its `.venv`, against a
database its own migrations build. The rounds alternate which side goes first, so a machine
that slows down during the run slows both. Per drain: the events per second from the first
ledger entry to the last relayed (as bench.earn's drain), the steady rate between 10% and 90%
of the entries, how long the first and last 10% took, the CPU per event of earn, PostgreSQL
and the broker, and the records consumed again at a rebalance (`redelivered`). Every drain is
checked: per customer, the ledger sum and the balance equal the expected points, no entry
twice. Prints the means and their ratios (this checkout over the
baseline) and writes bench/results/compare-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench import infra, loadgen
from bench.earn import WAL_POSITION
from bench.report import verify_by_customer
from bench.service import launch_replicas, service_env
from shared.logs import configure_logging
from shared.topics import ALL_TOPICS, ensure_topics, topics_with_dlq

RESULTS = Path(__file__).resolve().parent / "results" / "compare-latest.json"
SAMPLE_S = 0.05
FIGURES = (
    "eps",
    "steady_eps",
    "head_s",
    "tail_s",
    "cpu_us",
    "database_cpu_us",
    "broker_cpu_us",
    "wal_bytes",
    "redelivered",
)
SIDES = ("baseline", "this")


@dataclass(frozen=True)
class Drain:
    side: str
    eps: float
    steady_eps: float  # between 10% and 90% of the entries
    head_s: float  # the first 10%, from the first entry
    tail_s: float  # the last 10%, until every entry is relayed
    cpu_us: float
    database_cpu_us: float
    broker_cpu_us: float
    wal_bytes: float
    correct: bool
    # shop.orders records consumed again (at a rebalance) and found in the inbox: work that
    # adds CPU but no entry.
    redelivered: float = 0.0


def phases(
    timeline: list[tuple[float, int]], first: float, done: float, total: int
) -> dict[str, float]:
    """From (time, entries written) samples: the whole drain's rate, the steady rate between 10%
    and 90% of `total`, and the time the first and last tenth took."""
    t10 = next(t for t, n in timeline if n >= total * 0.1)
    t90 = next(t for t, n in timeline if n >= total * 0.9)
    return {
        "eps": total / (done - first),
        "steady_eps": total * 0.8 / max(t90 - t10, SAMPLE_S),
        "head_s": t10 - first,
        "tail_s": done - t90,
    }


def summary(drains: list[Drain]) -> dict[str, dict[str, float]]:
    """Per figure: the mean of each side and the ratio this / baseline."""
    out: dict[str, dict[str, float]] = {}
    for figure in FIGURES:
        means = {}
        for side in SIDES:
            values = [getattr(d, figure) for d in drains if d.side == side]
            means[side] = sum(values) / len(values)
        ratio = means["this"] / means["baseline"] if means["baseline"] else float("nan")
        out[figure] = {**means, "ratio": round(ratio, 3)}
    return out


async def drain(
    side: str, checkout: Path | None, kafka: str, load: loadgen.Load, args: argparse.Namespace
) -> Drain:
    database = await infra.fresh_database()
    env = service_env(kafka, database, f"bench-compare-{side}-{time.time_ns()}", args.batch)
    services = await launch_replicas("earn", env, args.replicas, checkout=checkout)
    total = len(load.records)
    conn = await asyncpg.connect(database)
    try:
        cpu = sum(s.cpu_seconds() for s in services)
        database_cpu, broker_cpu = infra.database_cpu_seconds(), infra.broker_cpu_seconds()
        wal = await conn.fetchval(WAL_POSITION)
        timeline = []
        while True:
            # The seq handed out last: cheap to read; rolled-back entries count, so the rows are
            # counted once it is reached.
            written = await conn.fetchval(
                """SELECT coalesce(pg_sequence_last_value(
                              pg_get_serial_sequence('earn.ledger', 'seq')::regclass), 0)"""
            )
            now = time.time()
            timeline.append((now, written))
            if (
                written >= total
                and not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM earn.outbox)")
                and await conn.fetchval("SELECT count(*) FROM earn.ledger") >= total
            ):
                break
            if now - timeline[0][0] > args.timeout_s:
                raise TimeoutError(f"{side}: earn did not drain {total} events")
            await asyncio.sleep(SAMPLE_S)
        cpu = sum(s.cpu_seconds() for s in services) - cpu
        database_cpu = infra.database_cpu_seconds() - database_cpu
        broker_cpu = infra.broker_cpu_seconds() - broker_cpu
        wal = await conn.fetchval(WAL_POSITION) - wal
        first = float(
            await conn.fetchval("SELECT extract(epoch FROM min(recorded_at)) FROM earn.ledger")
        )
        correct = await verify_by_customer(conn, load.expected_points)
        redelivered = sum([await duplicates_of(s.url) for s in services])
    finally:
        await conn.close()
        for service in services:
            service.stop()
    return Drain(
        side=side,
        **phases(timeline, first, now, total),
        cpu_us=cpu * 1e6 / total,
        database_cpu_us=database_cpu * 1e6 / total,
        broker_cpu_us=broker_cpu * 1e6 / total,
        wal_bytes=float(wal) / total,
        correct=correct,
        redelivered=redelivered,
    )


async def duplicates_of(url: str) -> float:
    """The shop.orders records a service found in its inbox already, from its metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{url}/metrics")).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "loyalty_messages_consumed"
        for sample in family.samples
        if sample.name.endswith("_total")
        and sample.labels.get("topic") == "shop.orders"
        and sample.labels.get("outcome") == "duplicate"
    )


async def main(args: argparse.Namespace) -> dict[str, Any]:
    checkouts: dict[str, Path | None] = {"baseline": args.baseline.resolve(), "this": None}
    load = loadgen.generate(args.events, args.customers, prefix="c")
    drains = []
    try:
        for n in range(args.rounds):
            for side in SIDES if n % 2 == 0 else SIDES[::-1]:
                # A broker of its own per drain: the same topics, the same records, nothing left
                # of the drain before.
                kafka = infra.fresh_broker()
                await ensure_topics(kafka, topics_with_dlq(ALL_TOPICS), partitions=4)
                await loadgen.preload(kafka, "shop.orders", load.records)
                run = await drain(side, checkouts[side], kafka, load, args)
                print(f"round {n + 1} {side:8} {_line(run)}", flush=True)
                drains.append(run)
                infra.stop_broker()
    finally:
        infra.stop_broker()
    return {
        "baseline": str(args.baseline),
        "replicas": args.replicas,
        "events": args.events,
        "customers": args.customers,
        "batch": args.batch,
        "drains": [asdict(d) for d in drains],
        "summary": summary(drains),
        "correct": all(d.correct for d in drains),
    }


def _line(run: Drain) -> str:
    return (
        f"{run.eps:8.0f} events/s  steady {run.steady_eps:8.0f}  head {run.head_s:5.2f} s  "
        f"tail {run.tail_s:5.2f} s  earn {run.cpu_us:6.1f} µs  pg {run.database_cpu_us:5.1f} µs  "
        f"broker {run.broker_cpu_us:5.1f} µs  again {run.redelivered:5.0f}  "
        f"{'ok' if run.correct else 'WRONG'}"
    )


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="drains per side (default 3)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--timeout-s", type=float, default=900.0)
    args = parser.parse_args()
    python = args.baseline / ".venv" / "bin" / "python"
    if not python.exists():
        parser.error(f"{python} is missing: run `uv sync --frozen` in the baseline checkout")
    configure_logging(level="warning")
    figures = asyncio.run(main(args))
    print(f"\n{'figure':16} {'baseline':>10} {'this':>10} {'ratio':>7}")
    for figure, row in figures["summary"].items():
        print(f"{figure:16} {row['baseline']:10.2f} {row['this']:10.2f} {row['ratio']:7.3f}")
    print("every drain correct" if figures["correct"] else "SOME DRAIN WAS WRONG")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    cli()
