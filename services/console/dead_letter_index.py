"""The operations page's index: new records of every `*.dlq` topic, copied into PostgreSQL.

Every console process runs a pass every LOYALTY_CONSOLE_DEAD_LETTERS_INDEX_S; a pass holds a
transaction-level advisory lock, so one runs at a time across replicas (the others skip), reads
each partition on from the offset kept in `console.dead_letter_offsets`, and inserts the rows
and advances the offsets in that one transaction: a pass that fails leaves both as they were.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import TopicPartition

from services.console.dead_letters import KAFKA_FAILURES, dead_lettered_at
from services.console.settings import ConsoleSettings
from services.dlq.records import DeadLetter, DeadLetterReader, ReadOn
from shared.db import Connection
from shared.kafka_connection import KafkaConnection
from shared.runtime import Runtime
from shared.scheduled import every

log = structlog.get_logger(__name__)

LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"loyalty-console-dead-letter-index").digest()[:8], "big", signed=True
)
# Records read per partition in one pass: a pass holds its transaction open while it reads,
# so a large backlog is taken in several passes, run one after the other.
PER_PARTITION = 5_000
READ_TIMEOUT_S = 30.0
# runtime.rounds counts the finished rounds by this name.
ROUNDS = "dead_letter_index"

_INSERT = """
INSERT INTO console.dead_letters (dlq_topic, partition, "offset", record_timestamp, shop_id,
    topic, service, error_class, error_message, dead_lettered_at, key)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[], $5::text[], $6::text[],
    $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::bytea[])
ON CONFLICT DO NOTHING
"""
_ADVANCE = """
INSERT INTO console.dead_letter_offsets (dlq_topic, partition, next_offset)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])
ON CONFLICT (dlq_topic, partition) DO UPDATE SET next_offset = excluded.next_offset
"""


@dataclass(frozen=True)
class IndexPass:
    """What a pass did: skipped (another holds the lock, or Kafka did not answer), or read
    `indexed` records, with `more` left behind the per-partition bound."""

    ran: bool
    indexed: int = 0
    more: bool = False


async def index_dead_letters(
    pool: asyncpg.Pool,
    kafka: KafkaConnection,
    *,
    most: int = PER_PARTITION,
    timeout_s: float = READ_TIMEOUT_S,
) -> IndexPass:
    """One pass, unless another process's pass holds the lock."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", LOCK_KEY):
            return IndexPass(ran=False)
        kept = {
            TopicPartition(r[0], r[1]): r[2]
            for r in await conn.fetch(
                "SELECT dlq_topic, partition, next_offset FROM console.dead_letter_offsets"
            )
        }
        try:
            async with asyncio.timeout(timeout_s), DeadLetterReader(kafka) as reader:
                read = await reader.read_on(kept, most=most)
        except KAFKA_FAILURES as failure:
            log.warning("dead_letter_index_unavailable", error=type(failure).__name__)
            return IndexPass(ran=False)
        await _forget_gone(conn, read)
        await _insert(conn, read.found)
        advanced = read.next_offsets
        await conn.execute(
            _ADVANCE,
            [tp.topic for tp in advanced],
            [tp.partition for tp in advanced],
            list(advanced.values()),
        )
    return IndexPass(ran=True, indexed=len(read.found), more=read.behind)


async def _forget_gone(conn: Connection, read: ReadOn) -> None:
    """Rows of records Kafka no longer has: expired, of a partition whose topic was created
    again (its offsets begin anew), or of a topic deleted; replay could not find them."""
    starts = read.starts
    await conn.execute(
        """DELETE FROM console.dead_letters d
           USING unnest($1::text[], $2::int[], $3::bigint[], $4::bool[]) AS s(t, p, start, anew)
           WHERE d.dlq_topic = s.t AND d.partition = s.p AND (s.anew OR d."offset" < s.start)""",
        [tp.topic for tp in starts],
        [tp.partition for tp in starts],
        list(starts.values()),
        [tp in read.restarted for tp in starts],
    )
    topics = sorted({tp.topic for tp in starts})
    await conn.execute(
        """DELETE FROM console.dead_letters WHERE dlq_topic IN (SELECT DISTINCT dlq_topic
           FROM console.dead_letter_offsets WHERE NOT dlq_topic = ANY($1::text[]))""",
        topics,
    )
    await conn.execute(
        "DELETE FROM console.dead_letter_offsets WHERE NOT dlq_topic = ANY($1::text[])", topics
    )


async def _insert(conn: Connection, found: list[DeadLetter]) -> None:
    if not found:
        return
    columns: list[list[object]] = [[] for _ in range(11)]
    for dead in found:
        row = (
            dead.dlq_topic,
            dead.partition,
            dead.offset,
            dead.timestamp_ms,
            _text(dead.shop_id),
            _text(dead.original_topic),
            _text(dead.service),
            _text(dead.error_class),
            _text(dead.error_message),
            dead_lettered_at(dead),
            dead.key,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    await conn.execute(_INSERT, *columns)


def _text(value: str | None) -> str | None:
    """PostgreSQL's text holds no NUL, which a header or a body may."""
    return None if value is None else value.replace("\x00", "")


async def keep_indexing(runtime: Runtime, settings: ConsoleSettings) -> None:
    """The background task: a pass now and every interval; a backlog beyond one pass's bound
    is taken by passes run one after the other."""
    kafka = KafkaConnection.from_settings(settings)

    async def catch_up(pool: asyncpg.Pool) -> None:
        while (done := await index_dead_letters(pool, kafka)).more:
            log.info("dead_letter_index_behind", indexed=done.indexed)

    async def work(pool: asyncpg.Pool) -> None:
        # aiokafka closes a connection it is setting up only on its own errors: a pass cancelled
        # there (the service stopping) would leave the socket open. So a stop lets the pass in
        # flight end first; the runtime waits for it up to its graceful timeout.
        passing = asyncio.ensure_future(catch_up(pool))
        try:
            await asyncio.shield(passing)
        except asyncio.CancelledError:
            await asyncio.wait([passing])
            if not passing.cancelled() and (failure := passing.exception()) is not None:
                log.warning("dead_letter_index_failed_at_stop", error=repr(failure))
            raise

    await every(runtime, settings.console_dead_letters_index_s, work, name=ROUNDS)
