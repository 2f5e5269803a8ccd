"""Outbox: events written in the effect's transaction, relayed to Kafka by a background task."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from aiokafka.producer.message_accumulator import BatchBuilder

from shared import metrics
from shared.correlation import CORRELATION_HEADER, header_value, inherited_header
from shared.db import ACQUIRE_TIMEOUT_S, Connection
from shared.errors import Bug
from shared.events.binding import STRUCTURED_HEADER
from shared.kafka_connection import KafkaConnection, kafka_connection
from shared.retry import Backoff, is_transient

log = structlog.get_logger(__name__)

Header = tuple[str, bytes]


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One Kafka record to publish once the transaction that wrote it commits."""

    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[Header, ...] = field(default=())
    # The input event that caused it, when the producer knows: spares reading it from `value`.
    cause: str | None = None


async def enqueue(conn: Connection, schema: str, messages: Sequence[OutboxMessage]) -> None:
    """Write messages to the outbox, as one row in the order given; the caller owns the
    transaction.

    A message caused by an input of the batch being applied inherits its correlation id.
    """
    if not messages:
        return
    topics, keys, payloads, counts = [], [], [], []
    names: list[str] = []
    values: list[bytes] = []
    for m in messages:
        inherited = inherited_header(m.topic, m.value, m.headers, cause=m.cause)
        headers = m.headers if inherited is None else (*m.headers, inherited)
        topics.append(m.topic)
        keys.append(m.key)
        payloads.append(m.value)
        counts.append(len(headers))
        for name, value in headers:
            names.append(name)
            values.append(value)
    await conn.execute(
        f"""INSERT INTO {schema}.outbox
                (topics, keys, payloads, header_names, header_values, header_counts)
            VALUES ($1, $2, $3, $4, $5, $6)""",
        topics,
        keys,
        payloads,
        names,
        values,
        counts,
    )


# The largest request the relay's producer sends: above any topic's max.message.bytes here.
MAX_REQUEST_BYTES = 16 * 1024 * 1024

# A message read back from the outbox: topic, key, value, and headers as the producer takes them.
_Record = tuple[str, bytes | None, bytes, list[Header]]


def _records(rows: Sequence[asyncpg.Record]) -> list[_Record]:
    """The messages of outbox rows, in the order they were written; each event marked as a
    CloudEvent in structured mode by its content-type header (Kafka protocol binding)."""
    records: list[_Record] = []
    for row in rows:
        names, values = row["header_names"], row["header_values"]
        at = 0
        for topic, key, payload, count in zip(
            row["topics"], row["keys"], row["payloads"], row["header_counts"], strict=True
        ):
            if count == 1:  # the usual case: the correlation id alone
                headers = [(names[at], values[at])]
            else:
                headers = list(zip(names[at : at + count], values[at : at + count], strict=True))
            at += count
            if not topic.endswith(".dlq"):  # a dead letter keeps its record's headers as they were
                headers.insert(0, STRUCTURED_HEADER)
            records.append((topic, key, payload, headers))
    return records


# Where Kafka put a message (partition, offset), or why it did not take it.
_Outcome = tuple[int, int] | Exception


async def _raise(exc: Exception) -> Any:
    raise exc


@functools.lru_cache(maxsize=1 << 16)
def key_hash(key: bytes) -> int:
    """The partitioning hash of a key, as Kafka's default partitioner takes it (the positive
    murmur2): a key's partition is this modulo the topic's partition count.

    Remembered for the 65,536 most recent keys: murmur2 in pure Python costs about 2 µs, and a
    customer's events come again and again. Full, the cache holds about 15 MB (keys of 17
    bytes, measured with tracemalloc).
    """
    return int(murmur2(key)) & 0x7FFFFFFF


class OutboxRelay:
    """Moves committed outbox rows to Kafka.

    Each pass locks the oldest rows holding up to `batch_size` messages (at least one row) with
    FOR UPDATE SKIP LOCKED, so replicas relaying at once never take the same row; the rows are
    deleted in the same transaction only after Kafka acknowledged every record (acks=all,
    idempotent producer).
    A crash between the acknowledgement and the commit republishes those rows: consumers
    deduplicate by event id, so delivery is at least once and effects exactly once.
    """

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        schema: str,
        kafka: KafkaConnection | str,
        service: str,
        batch_size: int = 1000,
        idle_poll_s: float = 0.2,
        producer_factory: Callable[[], AIOKafkaProducer] | None = None,
        compression: str | None = None,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._service = service
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self._producer_factory = producer_factory or self._default_producer(
            kafka_connection(kafka), service, compression
        )
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()  # the producer's own, for keyless messages
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._rows_to_lock = 1
        self._more = False  # whether the last pass left rows it could have taken
        self.last_pass_at = time.monotonic()

    @staticmethod
    def _default_producer(
        kafka: KafkaConnection, service: str, compression: str | None
    ) -> Callable[[], AIOKafkaProducer]:
        return lambda: AIOKafkaProducer(
            **kafka.client_options(),
            compression_type=compression,
            client_id=f"loyalty-{service}-outbox",
            acks="all",
            enable_idempotence=True,
            linger_ms=2,
            max_batch_size=256 * 1024,
            # A record alone may be far larger than a batch: a dead letter holds a consumed
            # record whole. The broker's per-topic limit is the one that counts.
            max_request_size=MAX_REQUEST_BYTES,
            request_timeout_ms=15_000,
        )

    def wake(self) -> None:
        """Called after a transaction that wrote to the outbox commits: relay without waiting."""
        self._wake.set()

    async def start(self) -> None:
        self._producer = self._producer_factory()
        await self._producer.start()
        self._task = asyncio.create_task(self._run(), name=f"outbox-relay-{self._schema}")
        self._task.add_done_callback(self._on_exit)

    @property
    def failed(self) -> bool:
        """True while passes fail for a reason other than a brief outage, or once the task
        ended without being asked to stop: readiness fails."""
        died = self._task is not None and self._task.done() and not self._stopping
        return died or self._failing

    def _on_exit(self, task: asyncio.Task[None]) -> None:
        # Nobody awaits the task until stop(); a relay that dies must say so at once.
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox_relay_died", schema=self._schema, exc_info=task.exception())

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop after a last drain, so events of committed work are not left waiting."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                log.warning("outbox_relay_stop_timeout", schema=self._schema)
        if self._producer is not None:
            await self._producer.stop()

    async def _run(self) -> None:
        backoff = Backoff()  # at most 10 s between attempts, whatever the failure
        while True:
            try:
                relayed = await self.relay_once()
                backoff.reset()
                self._failing = False
            except Exception as exc:
                # Nothing is lost while the relay waits: the rows stay in the outbox. It never
                # gives up, so that a failure nobody foresaw heals without a restart; until
                # then readiness fails and the log says why, with the traceback.
                if is_transient(exc):
                    log.warning("outbox_relay_retry", schema=self._schema, error=repr(exc))
                else:
                    self._failing = True
                    log.exception("outbox_relay_failed", schema=self._schema)
                if self._stopping:
                    return
                await asyncio.sleep(backoff.next_delay())
                continue
            if self._stopping and relayed == 0:
                return
            if not self._more and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll_s)

    async def relay_once(self) -> int:
        """Publish the oldest outbox rows holding up to `batch_size` messages (at least one row);
        returns how many messages were published."""
        self.last_pass_at = time.monotonic()
        producer = self._producer
        if producer is None:
            raise Bug("the outbox relay runs before start()")
        async with self._pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            # Lock first, then cut: rows another relay holds are skipped, not counted. How many
            # rows to lock follows the last pass, so that at most one locked row is left for
            # the next pass (it is free again at commit) and other relays find the rest.
            rows = await conn.fetch(
                f"""WITH locked AS (
                        SELECT id, size FROM {self._schema}.outbox ORDER BY id
                        LIMIT $2 FOR UPDATE SKIP LOCKED),
                    chosen AS (
                        SELECT id FROM (
                            SELECT id, sum(size) OVER (ORDER BY id) - size AS before
                            FROM locked) running
                        WHERE before < $1)
                    SELECT o.id, o.topics, o.keys, o.payloads, o.header_names, o.header_values,
                           o.header_counts
                    FROM {self._schema}.outbox o JOIN chosen USING (id)
                    ORDER BY o.id""",
                self._batch_size,
                self._rows_to_lock,
            )
            asked = self._rows_to_lock
            self._more = False
            if not rows:
                return 0
            records = _records(rows)
            self._next_rows_to_lock(len(rows), len(records))
            # Rows may be waiting still unless the pass found fewer than it could take.
            self._more = len(rows) == asked or len(records) >= self._batch_size
            outcomes = await self._publish(producer, records)
            failure = await self._settle(conn, rows, outcomes)
        records = [r for r, o in zip(records, outcomes, strict=True) if isinstance(o, tuple)]
        delivered = [o for o in outcomes if isinstance(o, tuple)]
        for topic, count in Counter(r[0] for r in records).items():
            metrics.OUTBOX_PUBLISHED.labels(self._service, topic).inc(count)
        if log.is_enabled_for(logging.DEBUG):
            self._log_relayed(records, delivered)
        if len(delivered) < len(outcomes):
            # The idempotent producer refuses whatever follows a failed batch of a partition
            # (out of order sequence): a new producer starts its sequences anew.
            await producer.stop()
            self._producer = self._producer_factory()
            await self._producer.start()
        if failure is not None:  # the delivered rows are gone: only the others come again
            raise failure
        return len(records)

    async def _settle(
        self, conn: Connection, rows: Sequence[asyncpg.Record], outcomes: Sequence[_Outcome]
    ) -> Exception | None:
        """Delete the rows whose every record Kafka acknowledged, set aside those the broker
        refuses as too large for ever, keep the rest; returns the first failure kept."""
        delivered: list[int] = []
        parked: dict[int, Exception] = {}
        kept: Exception | None = None
        at = 0
        for row in rows:
            mine = outcomes[at : at + len(row["topics"])]
            at += len(row["topics"])
            failed = next((o for o in mine if isinstance(o, Exception)), None)
            if failed is None:
                delivered.append(row["id"])
            elif isinstance(failed, MessageSizeTooLargeError):
                parked[row["id"]] = failed
            elif kept is None:
                kept = failed
        await conn.execute(
            f"DELETE FROM {self._schema}.outbox WHERE id = ANY($1::bigint[])", delivered
        )
        if parked:
            await self._park(conn, rows, parked)
        return kept

    async def _park(
        self, conn: Connection, rows: Sequence[asyncpg.Record], parked: dict[int, Exception]
    ) -> None:
        """Move rows that can never be published to the outbox_parked table."""
        ids = list(parked)
        await conn.execute(
            f"""WITH moved AS (
                    DELETE FROM {self._schema}.outbox WHERE id = ANY($1::bigint[]) RETURNING *)
                INSERT INTO {self._schema}.outbox_parked (id, error, topics, keys, payloads,
                    header_names, header_values, header_counts)
                SELECT m.id, e.error, m.topics, m.keys, m.payloads, m.header_names,
                       m.header_values, m.header_counts
                FROM moved m JOIN unnest($1::bigint[], $2::text[]) AS e(id, error) USING (id)""",
            ids,
            [repr(parked[i]) for i in ids],
        )
        for row in rows:
            if row["id"] in parked:
                topics = sorted(set(row["topics"]))
                for topic in topics:
                    metrics.OUTBOX_PARKED.labels(self._service, topic).inc()
                log.error(
                    "outbox_row_parked",
                    schema=self._schema,
                    row_id=row["id"],
                    topics=topics,
                    sizes=[len(p) for p in row["payloads"]],
                    error=repr(parked[row["id"]]),
                )

    def _next_rows_to_lock(self, rows: int, messages: int) -> None:
        """Rows of one message each (dead letters, notify's outcomes) and rows of hundreds (a
        batch's points events) share the outbox: lock twice as many rows while every locked row
        fitted in the pass, else one more than the pass took."""
        if messages < self._batch_size:
            if rows == self._rows_to_lock:
                self._rows_to_lock = min(self._batch_size, 2 * rows)
        else:
            self._rows_to_lock = rows + 1

    async def _publish(
        self, producer: AIOKafkaProducer, records: Sequence[_Record]
    ) -> list[_Outcome]:
        """Send the messages as record batches, one per partition (more when one fills), in
        outbox order within each partition; once Kafka acknowledged them all, each message's
        partition and offset, or the error that its batch met.

        A batch built here costs a fraction of a `send` per record, and a pass awaits a few
        times instead of once per record: the relay keeps up even while the consumers of the
        same process keep the event loop busy.
        """
        partitions: dict[str, list[int]] = {}
        batches: list[tuple[str, int, BatchBuilder]] = []
        filling: dict[tuple[str, int], int] = {}  # (topic, partition) -> index in batches
        placed: list[tuple[int, int]] = []  # per message: its batch's index, its offset in it
        for topic, key, value, headers in records:
            known = partitions.get(topic)
            if known is None:
                known = partitions[topic] = sorted(await producer.partitions_for(topic))
            partition = (
                known[key_hash(key) % len(known)]
                if key is not None
                else self._partitioner(key, known, known)
            )
            index = filling.get((topic, partition), -1)
            appended = (
                batches[index][2].append(timestamp=None, key=key, value=value, headers=headers)
                if index >= 0
                else None
            )
            if appended is None:  # the first record of this partition, or its batch is full
                index = filling[(topic, partition)] = len(batches)
                batches.append((topic, partition, producer.create_batch()))
                appended = batches[index][2].append(
                    timestamp=None, key=key, value=value, headers=headers
                )
                if appended is None:
                    raise Bug(f"an outbox record for {topic} does not fit in a producer batch")
            placed.append((index, appended.offset))
        # Batches of one partition are queued in the order they were filled, so messages keep
        # their order within a partition.
        acks: list[Awaitable[Any]] = []
        for topic, partition, batch in batches:
            try:
                acks.append(await producer.send_batch(batch, topic, partition=partition))
            except Exception as exc:  # noqa: BLE001 - this batch's outcome, as an ack's error
                acks.append(_raise(exc))
        sent = await asyncio.gather(*acks, return_exceptions=True)
        outcomes: list[_Outcome] = []
        for i, relative in placed:
            ack = sent[i]
            if isinstance(ack, Exception):
                outcomes.append(ack)
            elif isinstance(ack, BaseException):
                raise ack
            else:
                outcomes.append((ack.partition, ack.offset + relative))
        return outcomes

    def _log_relayed(
        self, records: Sequence[_Record], delivered: Sequence[tuple[int, int]]
    ) -> None:
        for (topic, _, _, headers), (partition, offset) in zip(records, delivered, strict=True):
            log.debug(
                "event_relayed",
                topic=topic,
                partition=partition,
                offset=offset,
                correlation_id=header_value(tuple(headers), CORRELATION_HEADER),
            )
