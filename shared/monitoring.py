"""Sampled gauges (consumer lag, outbox, pool) and the readiness verdict of a service process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from aiokafka import codec

from shared import metrics
from shared.undecodable import SetAsideConsumer, UndecodableBatch

if TYPE_CHECKING:
    from shared.consumer import BatchConsumer
    from shared.runtime import Runtime

log = structlog.get_logger(__name__)

CHECK_TIMEOUT_S = 2.0

# Whether this process can decode record batches of each codec a producer may use.
CODECS: Mapping[str, Callable[[], bool]] = {
    "gzip": codec.has_gzip,
    "snappy": codec.has_snappy,
    "lz4": codec.has_lz4,
    "zstd": codec.has_zstd,
}


def missing_codecs(codecs: Mapping[str, Callable[[], bool]] = CODECS) -> tuple[str, ...]:
    """The codecs whose libraries are not installed: a batch of one of them stops its
    partition, since the consumer can neither read it nor pass it on."""
    return tuple(name for name, available in codecs.items() if not available())


@dataclass(frozen=True)
class Readiness:
    """Each check's result; ready only when all pass."""

    checks: dict[str, bool]
    stuck_topics: tuple[str, ...] = ()
    missing_codecs: tuple[str, ...] = ()
    undecodable: tuple[UndecodableBatch, ...] = ()
    # While the process has not started yet: the dependency it waits for, and its last error.
    waiting_for: str | None = None
    startup_error: str | None = None

    @property
    def ready(self) -> bool:
        return all(self.checks.values())

    def to_json(self) -> bytes:
        status = "ready" if self.ready else "not_ready"
        body: dict[str, object] = {
            "status": status,
            "checks": self.checks,
            "stuck_topics": list(self.stuck_topics),
        }
        if self.missing_codecs:
            body["missing_codecs"] = list(self.missing_codecs)
        if self.undecodable:
            body["undecodable"] = [batch.as_json() for batch in self.undecodable]
        if self.waiting_for is not None:
            body["waiting_for"] = self.waiting_for
            body["startup_error"] = self.startup_error
        return json.dumps(body).encode()


@dataclass
class _TopicLag:
    partitions: dict[int, int] = field(default_factory=dict)
    # Monotonic time since which the lag has been above zero without a break.
    behind_since: float | None = None

    @property
    def total(self) -> int:
        return sum(self.partitions.values())


class Monitor:
    """Refreshes the gauges that are sampled rather than counted, and judges readiness.

    A consumer is stuck when its topic has had lag for longer than `stuck_after_s` and no
    batch committed in that time: records wait and nothing moves them.
    """

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._service = runtime.definition.name
        self._lags: dict[str, _TopicLag] = {}
        self._task: asyncio.Task[None] | None = None
        self._missing_codecs = missing_codecs()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"monitor-{self._service}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._runtime.settings.monitor_interval_s)

    async def refresh(self) -> None:
        """Sample every gauge once; a part that cannot be sampled now keeps its last value."""
        for consumer in self._runtime.consumers:
            await self._sample(f"lag of {consumer.topic}", functools.partial(self._lag, consumer))
        await self._sample("outbox", self._outbox)
        self._pool_use()
        await self.readiness()

    async def _sample(self, what: str, probe: Callable[[], Awaitable[None]]) -> None:
        limit = max(CHECK_TIMEOUT_S, self._runtime.settings.monitor_interval_s)
        try:
            async with asyncio.timeout(limit):
                await probe()
        except Exception as exc:  # noqa: BLE001 - a dependency may be down; readiness says so
            log.debug("monitor_sample_failed", sample=what, error=repr(exc))

    async def readiness(self) -> Readiness:
        """The start has ended, database and broker answer, no consumer is stuck, the outbox
        relay runs, every codec can be decoded and no partition waits on a batch that cannot."""
        runtime = self._runtime
        stuck = tuple(c.topic for c in runtime.consumers if self._is_stuck(c))
        undecodable = self._undecodable()
        relay = runtime.relay
        result = Readiness(
            checks={
                "started": runtime.started,
                "database": await self._database_answers(),
                "broker": await self._broker_answers(),
                "consumers": not stuck,
                "outbox_relay": relay is not None and not relay.failed,
                "codecs": not self._missing_codecs and not undecodable,
            },
            stuck_topics=stuck,
            missing_codecs=self._missing_codecs,
            undecodable=undecodable,
            waiting_for=None if runtime.started else runtime.waiting_for or "start",
            startup_error=runtime.startup_error,
        )
        metrics.OUTBOX_RELAY_UP.labels(self._service).set(int(result.checks["outbox_relay"]))
        for check, passed in result.checks.items():
            metrics.READINESS_CHECK.labels(self._service, check).set(int(passed))
        metrics.READY.labels(self._service).set(int(result.ready))
        return result

    def _undecodable(self) -> tuple[UndecodableBatch, ...]:
        """The batches that hold up a partition of a consumer, and their count per topic."""
        found: list[UndecodableBatch] = []
        for consumer in self._runtime.consumers:
            kafka = _kafka_consumer(self._runtime, consumer.topic)
            held = kafka.undecodable if isinstance(kafka, SetAsideConsumer) else ()
            metrics.PARTITIONS_SET_ASIDE.labels(self._service, consumer.topic).set(len(held))
            found += held
        return tuple(found)

    def _is_stuck(self, consumer: BatchConsumer) -> bool:
        lag = self._lags.get(consumer.topic)
        if lag is None or lag.behind_since is None:
            return False
        waiting_since = max(lag.behind_since, consumer.last_batch_at)
        return time.monotonic() - waiting_since > self._runtime.settings.consumer_stuck_after_s

    async def _database_answers(self) -> bool:
        pool = self._runtime.pool
        if pool is None:
            return False
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S), pool.acquire() as conn:
                return bool(await conn.fetchval("SELECT 1") == 1)
        except Exception:  # noqa: BLE001 - any failure to answer means not ready
            return False

    async def _broker_answers(self) -> bool:
        try:
            return bool(await self._runtime.broker.ping(timeout=CHECK_TIMEOUT_S))
        except Exception:  # noqa: BLE001 - any failure to answer means not ready
            return False

    async def _lag(self, consumer: BatchConsumer) -> None:
        kafka = _kafka_consumer(self._runtime, consumer.topic)
        lag = self._lags.setdefault(consumer.topic, _TopicLag())
        assigned = sorted(kafka.assignment(), key=lambda tp: tp.partition) if kafka else []
        ends = await kafka.end_offsets(assigned) if assigned else {}
        partitions = {}
        for tp in assigned:
            committed = await kafka.committed(tp)
            if committed is None:  # the group never committed here: it starts at the beginning
                committed = (await kafka.beginning_offsets([tp]))[tp]
            partitions[tp.partition] = max(0, ends[tp] - committed)
        for gone in lag.partitions.keys() - partitions.keys():
            metrics.CONSUMER_LAG.remove(self._service, consumer.topic, str(gone))
        for partition, behind in partitions.items():
            metrics.CONSUMER_LAG.labels(self._service, consumer.topic, str(partition)).set(behind)
        lag.partitions = partitions
        if lag.total == 0:
            lag.behind_since = None
        elif lag.behind_since is None:
            lag.behind_since = time.monotonic()

    async def _outbox(self) -> None:
        pool = self._runtime.pool
        if pool is None:
            return
        schema = self._runtime.definition.schema
        async with pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""SELECT coalesce(sum(size), 0) AS waiting,
                           extract(epoch FROM now() - (
                               SELECT created_at FROM {schema}.outbox ORDER BY id LIMIT 1)
                           ) AS oldest_age
                    FROM {schema}.outbox"""
            )
        assert row is not None  # an aggregate always returns one row
        metrics.OUTBOX_BACKLOG.labels(self._service).set(row["waiting"])
        metrics.OUTBOX_OLDEST_AGE.labels(self._service).set(float(row["oldest_age"] or 0))

    def _pool_use(self) -> None:
        pool = self._runtime.pool
        if pool is None:
            return
        size, idle = pool.get_size(), pool.get_idle_size()
        metrics.DB_POOL_CONNECTIONS.labels(self._service, "in_use").set(size - idle)
        metrics.DB_POOL_CONNECTIONS.labels(self._service, "idle").set(idle)
        metrics.DB_POOL_MAX.labels(self._service).set(pool.get_max_size())


def _kafka_consumer(runtime: Runtime, topic: str) -> Any:
    """The aiokafka consumer behind the FastStream subscriber of `topic`, once it started."""
    for subscriber in runtime.broker.subscribers:
        if topic in getattr(subscriber, "topic_names", ()):
            return getattr(subscriber, "consumer", None)
    return None
