"""The scheduled evaluation: reviews, grace ends, roll-off, warnings and floors that fall due.

Due customers are claimed a chunk at a time with FOR UPDATE SKIP LOCKED, so any number of
replicas (and the `loyalty tiering evaluate` command) can run it at once without doing any
customer twice; each chunk commits on its own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog

from services.tiering import metrics
from services.tiering.adapters.contributions import forget_parked
from services.tiering.domain.state import Member
from services.tiering.handlers import evaluate_due
from services.tiering.shops import TierProgrammes
from shared.holders import Holders
from shared.runtime import Runtime
from shared.scheduled import every

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    customers: int
    events: int
    parked_dropped: int


async def run_evaluation(
    pool: asyncpg.Pool,
    *,
    programmes: TierProgrammes,
    schema: str,
    now: datetime,
    chunk: int,
    parked_retention_days: int,
    only: Sequence[Member] | None = None,
    holders: Holders | None = None,
) -> EvaluationReport:
    """Evaluate every customer due at `now` (or only the (shop, customer) pairs listed) at
    every shop with a programme, chunk by chunk; a coalition's members' own rows wait while
    they are members (`holders`)."""
    started = time.perf_counter()
    customers = events = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            done, enqueued = await evaluate_due(
                conn,
                programmes=programmes,
                schema=schema,
                now=now,
                limit=chunk,
                only=only,
                holders=holders or Holders(),
            )
        customers, events = customers + done, events + enqueued
        if done < chunk:
            break
    async with pool.acquire() as conn:
        dropped = await forget_parked(
            conn, schema, occurred_before=now - timedelta(days=parked_retention_days)
        )
    report = EvaluationReport(customers, events, dropped)
    metrics.EVALUATION_DURATION.labels("tiering").observe(time.perf_counter() - started)
    metrics.EVALUATED_CUSTOMERS.labels("tiering").inc(customers)
    log.info(
        "tier_evaluation_done",
        at=now.isoformat(),
        customers=customers,
        events=events,
        parked_dropped=dropped,
    )
    return report


async def evaluate_periodically(
    runtime: Runtime,
    *,
    programmes: TierProgrammes,
    chunk: int,
    interval_s: float,
    retention_days: int,
    holders: Holders | None = None,
) -> None:
    """The service's scheduler: one evaluation at start, then every `interval_s`."""

    async def work(pool: asyncpg.Pool) -> object:
        return await run_evaluation(
            pool,
            programmes=programmes,
            schema=runtime.definition.schema,
            now=runtime.clock.now(),
            chunk=chunk,
            parked_retention_days=retention_days,
            holders=holders,
        )

    await every(runtime, interval_s, work, name="tier_evaluation")
