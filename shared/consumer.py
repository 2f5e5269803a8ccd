"""Batch consumption: parse, deduplicate, apply in one transaction, dead-letter, then commit.

The offsets of a batch are committed by the subscriber only after `BatchConsumer.process`
returns, that is after the transaction holding the effects, the inbox rows and the dead
letters has committed. A transient failure is retried with backoff; if it lasts, the batch is
handed back uncommitted (the subscriber seeks back) so nothing is lost. Any other failure
isolates the records that cause it (shared.isolation): its neighbours are applied, and a
record that fails by itself is dead-lettered with the error. A failure that no record causes
alone (a bug on every path) hands the batch back after a capped, growing wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from hashlib import sha256
from typing import Any

import asyncpg
import structlog
from aiokafka import ConsumerRecord

from shared import metrics
from shared.clock import Clock
from shared.correlation import causes, correlation_of
from shared.db import ACQUIRE_TIMEOUT_S, Connection
from shared.errors import Bug, RejectedMessage, TransientFailure
from shared.events import CloudEvent, parse_kafka_record
from shared.failure_log import FailureLog
from shared.isolation import Isolation, describe, is_data_error, isolate
from shared.outbox import OutboxMessage, enqueue
from shared.retry import Backoff, is_transient

log = structlog.get_logger(__name__)


@dataclass(slots=True)  # not frozen: one per record, and frozen makes __init__ 3 times slower
class Incoming:
    """A consumed record and, when it parsed, its event."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    event: CloudEvent[Any] | None

    @property
    def position(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @property
    def record_key(self) -> str:
        """This record at its position: its position and what it holds (the event id, or a
        digest of bytes that did not parse).

        A position alone does not name a record for ever: a topic created again, or a new
        cluster, hands the same offsets to other records, which must not pass for it.
        """
        held = self.event.id if self.event is not None else sha256(self.value).hexdigest()[:32]
        return f"{self.position}/{held}"

    @property
    def inbox_key(self) -> str:
        # Unparseable records have no event id: the record itself identifies them instead.
        return self.event.id if self.event is not None else self.record_key

    @property
    def correlation_id(self) -> str:
        """The id of the input that started this chain (see shared.correlation)."""
        return correlation_of(self.headers, self.inbox_key)


@dataclass(frozen=True, slots=True)
class Rejection:
    """An input that can never be processed, and why."""

    incoming: Incoming
    error: RejectedMessage


# From this many records on, a batch is applied one transaction per partition, in parallel.
SPLIT_FROM = 256

# What a batch came to: the events applied, and the refused inputs.
Outcome = tuple[list[Incoming], list[Rejection]]

# A handler applies the effects of new events on `conn` (inside the caller's transaction) and
# returns the events it refused; it must not have written anything for those.
BatchHandler = Callable[[Connection, Sequence[Incoming]], Awaitable[Sequence[Rejection]]]


def to_incoming(record: ConsumerRecord[Any, Any]) -> Incoming | Rejection:
    """Parse one Kafka record (either CloudEvents mode) into an event, or say why it is
    rejected."""
    value: bytes = record.value or b""
    headers = tuple((k, v or b"") for k, v in record.headers) if record.headers else ()
    topic, partition, offset, key = record.topic, record.partition, record.offset, record.key
    try:
        event = parse_kafka_record(topic, key, value, headers)
    except RejectedMessage as error:
        return Rejection(Incoming(topic, partition, offset, key, value, headers, None), error)
    return Incoming(topic, partition, offset, key, value, headers, event)


def dead_letter(rejection: Rejection, *, service: str, now: datetime) -> OutboxMessage:
    """The DLQ record: original key, bytes and headers, plus why, where and when."""
    source = rejection.incoming
    extra = (
        ("x-dlq-error-class", rejection.error.error_class.encode()),
        ("x-dlq-error-message", rejection.error.reason[:1000].encode()),
        ("x-dlq-service", service.encode()),
        ("x-dlq-time", now.isoformat().encode()),
        ("x-dlq-topic", source.topic.encode()),
        ("x-dlq-partition", str(source.partition).encode()),
        ("x-dlq-offset", str(source.offset).encode()),
    )
    return OutboxMessage(f"{source.topic}.dlq", source.key, source.value, source.headers + extra)


class BatchConsumer:
    """Processes the batches of one topic for one service."""

    def __init__(
        self,
        *,
        service: str,
        schema: str,
        topic: str,
        handler: BatchHandler,
        clock: Clock,
        retry_window_s: float = 60.0,
        max_backoff_s: float = 10.0,
        parallel: int = 1,
        transactions: asyncio.Semaphore | None = None,
    ) -> None:
        self.service = service
        self.schema = schema
        self.topic = topic
        self._pool: asyncpg.Pool | None = None
        self._handler = handler
        self._clock = clock
        self._on_commit: Callable[[], None] = lambda: None
        self._retry_window_s = retry_window_s
        self._max_backoff_s = max_backoff_s
        self._parallel = parallel
        # Shared by the service's consumers: how many of their transactions may be open at once.
        self._transactions = transactions or asyncio.Semaphore(parallel)
        self._stopped = asyncio.Event()
        self.last_batch_at = time.monotonic()
        # Between two batches handed back for a failure that is not transient.
        self._given_back = Backoff(cap=max_backoff_s)
        self._failures = FailureLog()

    @property
    def stopping(self) -> bool:
        """Set on shutdown: retries and waits end, in-flight work is handed back."""
        return self._stopped.is_set()

    @stopping.setter
    def stopping(self, value: bool) -> None:
        if value:
            self._stopped.set()
        else:
            self._stopped.clear()

    def bind(self, pool: asyncpg.Pool, on_commit: Callable[[], None]) -> None:
        """Give the consumer its pool, and what to call once a batch committed."""
        self._pool = pool
        self._on_commit = on_commit

    async def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> None:
        """Apply a batch; returns only once its effects are committed."""
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(service=self.service, topic=self.topic):
            try:
                applied, rejected = await self._apply_partitions(records)
            except Exception as exc:
                await self._give_back(exc, len(records))
                raise
            self._given_back.reset()
            self.last_batch_at = time.monotonic()
            metrics.CONSUMER_LAST_COMMIT.labels(self.service, self.topic).set(time.time())
            self._on_commit()
            self._count((len(applied), len(rejected)), len(records))
            metrics.BATCH_SIZE.labels(self.service, self.topic).observe(len(records))
            metrics.BATCH_DURATION.labels(self.service, self.topic).observe(
                time.perf_counter() - started
            )
            self._log_outcome(applied, rejected)

    async def _give_back(self, exc: Exception, size: int) -> None:
        """Count and log a batch handed back, then wait before it comes again: a failure that
        is not transient would otherwise come back at once, again and again."""
        reason = "transient_exhausted" if isinstance(exc, TransientFailure) else "bug"
        metrics.BATCHES_FAILED.labels(self.service, self.topic, reason).inc()
        delay = self._given_back.next_delay() if reason == "bug" else 0.0
        level = "error" if reason == "bug" else "warning"
        self._failures.log(
            log, level, "batch_given_back", exc, reason=reason, size=size, delay_s=round(delay, 2)
        )
        if delay > 0:
            with contextlib.suppress(TimeoutError):  # a stop ends the wait
                await asyncio.wait_for(self._stopped.wait(), delay)

    async def _apply_partitions(self, records: Sequence[ConsumerRecord[Any, Any]]) -> Outcome:
        """A large batch: each partition's records in a transaction of their own, up to
        `parallel` at once; a small one in one transaction.

        Events are keyed by customer, so partitions share no customer: their transactions
        overlap as two replicas' do, and one's Python work (parsing its records first) runs
        while another waits for PostgreSQL. Every transaction ends before this returns; if one
        failed, the batch is handed back whole and the partitions that committed are found in
        the inbox when their records come again.

        A consumer that keeps up gets small batches, for which one commit instead of several
        is what keeps the latency low; only a consumer that is behind gets large ones.
        """
        by_partition: dict[int, list[ConsumerRecord[Any, Any]]] = {}
        if self._parallel > 1 and len(records) >= SPLIT_FROM:
            for record in records:
                by_partition.setdefault(record.partition, []).append(record)
        if len(by_partition) < 2:
            return await self._apply_isolating([to_incoming(r) for r in records])
        slots = asyncio.Semaphore(self._parallel)

        async def one(part: Sequence[ConsumerRecord[Any, Any]]) -> Outcome:
            async with slots:
                return await self._apply_isolating([to_incoming(r) for r in part])

        results = await asyncio.gather(
            *(one(part) for part in by_partition.values()), return_exceptions=True
        )
        applied: list[Incoming] = []
        rejected: list[Rejection] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            applied += result[0]
            rejected += result[1]
        return applied, rejected

    async def _apply_isolating(self, parsed: Sequence[Incoming | Rejection]) -> Outcome:
        """Apply the records; if that fails for a reason that is not transient, apply them
        apart from the ones that fail by themselves, and dead-letter those."""
        try:
            return await self._apply_with_retries(parsed)
        except Exception as exc:
            if isinstance(exc, TransientFailure) or is_transient(exc):
                raise
            error = exc
        found = await isolate(
            self._apply_with_retries, parsed, error, proves=lambda outcome: bool(outcome[0])
        )
        log.warning(
            "batch_isolated",
            size=len(parsed),
            attempts=found.attempts,
            failing=len(found.failures),
            complete=found.complete,
            error_class=type(error).__name__,
        )
        if not found.complete:
            raise error
        applied = [e for outcome in found.results for e in outcome[0]]
        rejected = [r for outcome in found.results for r in outcome[1]]
        return applied, rejected + await self._dead_letter_causes(found)

    async def _dead_letter_causes(
        self, found: Isolation[Incoming | Rejection, Outcome]
    ) -> list[Rejection]:
        """Dead-letter the records that cause the failures they meet alone: those whose values
        PostgreSQL refused, and any when other records were applied meanwhile. A failure that
        may not be the record's own is raised: the batch is handed back."""
        causes: list[Rejection] = []
        other: list[Exception] = []
        for item, failure in found.failures:
            if not isinstance(item, Incoming) or not (is_data_error(failure) or found.proven):
                other.append(failure)
                continue
            if not is_data_error(failure):  # a bug that this record alone meets: say it loudly
                self._failures.log(
                    log, "error", "record_failed", failure, partition=item.partition,
                    offset=item.offset, event_id=item.inbox_key,
                )  # fmt: skip
            causes.append(Rejection(item, describe(failure)))
        rejected = (await self._apply_with_retries(causes))[1] if causes else []
        if other:
            raise other[0]
        return rejected

    async def _apply_with_retries(self, parsed: Sequence[Incoming | Rejection]) -> Outcome:
        backoff = Backoff(cap=self._max_backoff_s)
        deadline = time.monotonic() + self._retry_window_s
        while True:
            try:
                return await self._apply(parsed)
            except Exception as exc:
                if not is_transient(exc):
                    raise
                metrics.TRANSIENT_FAILURES.labels(self.service, self.topic).inc()
                if self.stopping or time.monotonic() > deadline:
                    raise TransientFailure(f"giving the batch back after: {exc!r}") from exc
                delay = backoff.next_delay()
                log.warning(
                    "batch_retry", topic=self.topic, error=repr(exc), delay_s=round(delay, 2)
                )
                await asyncio.sleep(delay)

    async def _apply(self, parsed: Sequence[Incoming | Rejection]) -> Outcome:
        """One transaction: claim, apply, dead-letter; returns what was applied and refused."""
        if self._pool is None:
            raise Bug(f"consumer of {self.topic} used before bind()")
        async with (
            self._transactions,
            self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn,
            conn.transaction(),
        ):
            fresh = await self._claim(conn, parsed)
            events = [p for p in fresh if isinstance(p, Incoming)]
            rejections = [p for p in fresh if isinstance(p, Rejection)]
            # Each event's key once: it is a property, and this runs for every record.
            keys = [e.inbox_key for e in events]
            with causes(
                {k: correlation_of(e.headers, k) for k, e in zip(keys, events, strict=True)}
            ):
                refused = list(await self._handler(conn, events)) if events else []
            # A record refused with its event parsed (by the handler, or isolated as the cause
            # of a failure) is released from its event id.
            released = [r.incoming for r in rejections if r.incoming.event is not None]
            await self._release(conn, released + [r.incoming for r in refused])
            rejections += refused
            now = self._clock.now()
            await enqueue(
                conn,
                self.schema,
                [dead_letter(r, service=self.service, now=now) for r in rejections],
            )
        if not refused:
            return events, rejections
        refused_keys = {r.incoming.inbox_key for r in refused}
        kept = [e for k, e in zip(keys, events, strict=True) if k not in refused_keys]
        return kept, rejections

    async def _release(self, conn: Connection, refused: Sequence[Incoming]) -> None:
        """A refused event is not processed: key its inbox row by the record (its position
        and id) instead of the id alone.

        Redelivery of the same record still finds it (no second dead letter), while the same
        event replayed from the dead-letter topic, at a new position, is applied anew.
        """
        if not refused:
            return
        await conn.execute(
            f"""WITH released AS (
                    DELETE FROM {self.schema}.inbox WHERE event_id = ANY($1::text[]))
                INSERT INTO {self.schema}.inbox (event_id, topic)
                SELECT unnest($2::text[]), $3 ON CONFLICT DO NOTHING""",
            [i.inbox_key for i in refused],
            [i.record_key for i in refused],
            self.topic,
        )

    def _log_outcome(self, applied: Sequence[Incoming], rejected: Sequence[Rejection]) -> None:
        for r in rejected:
            log.warning(
                "message_dead_lettered",
                partition=r.incoming.partition,
                offset=r.incoming.offset,
                event_id=r.incoming.event.id if r.incoming.event is not None else None,
                correlation_id=r.incoming.correlation_id,
                error_class=r.error.error_class,
                reason=r.error.reason[:300],
            )
        # One line per event only when asked for: at INFO it would drown everything else.
        if applied and log.is_enabled_for(logging.DEBUG):
            for e in applied:
                log.debug(
                    "event_applied",
                    partition=e.partition,
                    offset=e.offset,
                    event_id=e.inbox_key,
                    event_type=e.event.type if e.event is not None else None,
                    correlation_id=e.correlation_id,
                )

    async def _claim(
        self, conn: Connection, parsed: Sequence[Incoming | Rejection]
    ) -> list[Incoming | Rejection]:
        """Record ids in the inbox; keep only the first sighting of ids never seen before.

        A record that is in the inbox was refused before (see _release): a redelivery of it
        is a duplicate too. Another record at the same position (the topic was created again)
        is not.
        """
        keys = [_inbox_key(p) for p in parsed]
        records = [_incoming(p).record_key for p in parsed]
        rows = await conn.fetch(
            f"""INSERT INTO {self.schema}.inbox (event_id, topic)
                SELECT k.key, $3 FROM unnest($1::text[], $2::text[]) AS k(key, record)
                WHERE NOT EXISTS (
                    SELECT 1 FROM {self.schema}.inbox i WHERE i.event_id = k.record)
                ON CONFLICT DO NOTHING RETURNING event_id""",
            keys,
            records,
            self.topic,
        )
        new = {row["event_id"] for row in rows}
        fresh = []
        for key, item in zip(keys, parsed, strict=True):
            if key in new:
                new.discard(key)
                fresh.append(item)
        return fresh

    def _count(self, outcome: tuple[int, int], total: int) -> None:
        processed, dead = outcome
        counter = metrics.MESSAGES_CONSUMED
        counter.labels(self.service, self.topic, "processed").inc(processed)
        counter.labels(self.service, self.topic, "dead_lettered").inc(dead)
        counter.labels(self.service, self.topic, "duplicate").inc(total - processed - dead)


def _incoming(item: Incoming | Rejection) -> Incoming:
    return item if isinstance(item, Incoming) else item.incoming


def _inbox_key(item: Incoming | Rejection) -> str:
    return _incoming(item).inbox_key
