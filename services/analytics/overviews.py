"""Overviews answered from their cache: a missing one computed once (concurrent first
requests wait for it), and those requested in the last day recomputed in the background by
whichever analytics process claims them first."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Final

import asyncpg
import structlog

from services.analytics.adapters import overview_cache as cache
from services.analytics.adapters.overview_cache import OverviewKey
from services.analytics.overview import Overview, build_overview
from services.analytics.report import Segment
from shared.clock import Clock
from shared.db import Connection
from shared.runtime import Runtime
from shared.scheduled import every

log = structlog.get_logger(__name__)

# Rows nobody asked for in this long are left to age (the next request recomputes them).
KEPT_FRESH_FOR: Final = timedelta(days=1)
# The refresher looks for due rows this often at most (more often when the interval is shorter).
ROUND_S: Final = 10.0
# The shape of the overview this release computes: its fields, as its JSON schema gives them.
# A release reads and writes only rows of its own shape, so during a rolling upgrade the
# previous release never answers a body with a field it does not know, and a release never
# answers one that lacks a field it has.
SHAPE: Final = hashlib.sha256(
    json.dumps(Overview.model_json_schema(), sort_keys=True).encode()
).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class OverviewSource:
    """What computing an overview needs besides its key: the schema, the clock, and the
    report's settings (point values, churn window)."""

    schema: str
    clock: Clock
    point_values: Mapping[str, Decimal]
    churn_after_days: int

    async def compute(self, conn: Connection, key: OverviewKey) -> Overview:
        return await build_overview(
            conn,
            self.schema,
            Segment(shop=key.shop, currency=key.currency),
            time_zone=key.time_zone,
            point_value=self.point_values.get(key.currency),
            churn_after_days=self.churn_after_days,
            now=self.clock.now(),
        )


async def answer(pool: asyncpg.Pool, source: OverviewSource, key: OverviewKey) -> Overview:
    """The stored overview, or one computed now and stored when there is none."""
    schema = source.schema
    async with pool.acquire() as conn:
        if (
            found := await cache.read_marking(conn, schema, SHAPE, key, source.clock.now())
        ) is not None:
            return Overview.model_validate_json(found)
        await cache.lock(conn, key)
        try:
            # Another request may have computed it while this one waited for the lock.
            found = await cache.read_marking(conn, schema, SHAPE, key, source.clock.now())
            if found is not None:
                return Overview.model_validate_json(found)
            overview = await source.compute(conn, key)
            await cache.store(
                conn, schema, SHAPE, key, overview.model_dump_json(), computed_at=overview.as_of
            )
            return overview
        finally:
            await cache.unlock(conn, key)


async def refresh_due(pool: asyncpg.Pool, source: OverviewSource, *, every_s: float) -> int:
    """Recompute every row requested in the last day and computed more than `every_s` ago,
    one at a time, each locked while it is recomputed; returns how many."""
    refreshed = 0
    while True:
        now = source.clock.now()
        async with pool.acquire() as claiming, claiming.transaction():
            key = await cache.claim_due(
                claiming,
                source.schema,
                SHAPE,
                requested_since=now - KEPT_FRESH_FOR,
                computed_before=now - timedelta(seconds=every_s),
            )
            if key is None:
                return refreshed
            # The figures are read in a repeatable-read transaction of their own.
            async with pool.acquire() as conn:
                overview = await source.compute(conn, key)
            await cache.store(
                claiming,
                source.schema,
                SHAPE,
                key,
                overview.model_dump_json(),
                computed_at=overview.as_of,
            )
        refreshed += 1


async def refresh_periodically(runtime: Runtime, *, source: OverviewSource, every_s: float) -> None:
    """The background task of every analytics process."""

    async def work(pool: asyncpg.Pool) -> int:
        refreshed = await refresh_due(pool, source, every_s=every_s)
        if refreshed:
            log.info("overviews_refreshed", overviews=refreshed)
        return refreshed

    await every(runtime, min(every_s, ROUND_S), work, name="overview_refresh")
