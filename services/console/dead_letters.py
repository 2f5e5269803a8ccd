"""Use cases of the operations page: a shop's dead letters, read from the index, and their replay.

The page reads `console.dead_letters`, which the background indexer
(services.console.dead_letter_index) fills from every `*.dlq` topic: no Kafka. Replay goes
through the `loyalty dlq` tool's own code (services.dlq.replay) and its log, `dlq.replays`:
the console is a second front end of the same tool, so a record replayed here or by the
command line is replayed once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiokafka.errors import KafkaError

from services.dlq.records import DeadLetter, dlq_topics
from services.dlq.replay import SCHEMA, Position, ReplayReport, Selection, replay
from shared.errors import TransientFailure
from shared.kafka_connection import KafkaConnection

# What reaching Kafka may raise: the replay stops, the indexer's pass waits for the next.
KAFKA_FAILURES = (KafkaError, OSError, TimeoutError, TransientFailure)


class NotTheShops(Exception):
    """A position that is not a dead letter of the shop (another shop's, or none): a 404."""


@dataclass(frozen=True)
class DeadLetterRow:
    """One dead letter as the page shows it."""

    position: str
    topic: str
    at: datetime
    service: str
    error_class: str
    error_message: str
    shop_id: str | None
    replayed: bool


@dataclass(frozen=True)
class ShopDeadLetters:
    """The shop's dead letters found (newest first, at most `shown`) and their error classes."""

    rows: list[DeadLetterRow]
    error_classes: list[str]
    more: bool


@dataclass(frozen=True)
class Scope:
    """Whose dead letters: the shop's, and the shopless ones too for a platform operator."""

    shop: str
    shopless: bool

    def selection(
        self,
        topic: str | None = None,
        *,
        error_class: str | None = None,
        positions: frozenset[Position] | None = None,
    ) -> Selection:
        topics = dlq_topics(topic)
        if positions is not None and topic is None:
            topics = sorted({p[0] for p in positions} & set(topics))
        return Selection(
            topics,
            error_class=error_class,
            shop=self.shop,
            shopless=self.shopless,
            positions=positions,
        )


def dead_lettered_at(dead: DeadLetter) -> datetime:
    """The x-dlq-time header, else the record's timestamp; always aware."""
    try:
        at = datetime.fromisoformat(dead.dead_lettered_at)
    except ValueError:
        at = datetime.fromtimestamp(dead.timestamp_ms / 1000, UTC)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


_ROWS = """
SELECT d.dlq_topic, d.partition, d."offset", d.topic, d.dead_lettered_at, d.service,
       d.error_class, d.error_message, d.shop_id, {replayed} AS replayed
FROM console.dead_letters d
WHERE (d.shop_id = $1 OR ($2 AND d.shop_id IS NULL)) AND d.dlq_topic = ANY($3::text[])
  AND ($4::text IS NULL OR d.error_class = $4)
ORDER BY d.record_timestamp DESC, d.dlq_topic DESC, d.partition DESC, d."offset" DESC
LIMIT $5
"""
_REPLAYED = """EXISTS (SELECT 1 FROM dlq.replays r WHERE r.dlq_topic = d.dlq_topic
    AND r.dlq_partition = d.partition AND r.dlq_offset = d."offset"
    AND r.record_timestamp = d.record_timestamp)"""
_CLASSES = """
SELECT DISTINCT error_class FROM console.dead_letters
WHERE (shop_id = $1 OR ($2 AND shop_id IS NULL)) AND dlq_topic = ANY($3::text[])
ORDER BY error_class
"""


async def read_dead_letters(
    pool: asyncpg.Pool,
    scope: Scope,
    *,
    topic: str | None,
    error_class: str | None,
    shown: int,
) -> ShopDeadLetters:
    """The scope's newest `shown` dead letters from the index (no Kafka), with whether each
    was replayed (the tool's log, `dlq.replays`, absent until a first replay)."""
    topics = scope.selection(topic).topics
    async with pool.acquire() as conn:
        logged = await conn.fetchval("SELECT to_regclass($1)", f"{SCHEMA}.replays") is not None
        rows = await conn.fetch(
            _ROWS.format(replayed=_REPLAYED if logged else "false"),
            scope.shop,
            scope.shopless,
            topics,
            error_class,
            shown + 1,
        )
        classes = await conn.fetch(_CLASSES, scope.shop, scope.shopless, topics)
    return ShopDeadLetters(
        [_row(r) for r in rows[:shown]], [c[0] for c in classes], more=len(rows) > shown
    )


def _row(row: asyncpg.Record) -> DeadLetterRow:
    return DeadLetterRow(
        position=f"{row['dlq_topic']}/{row['partition']}/{row['offset']}",
        topic=row["topic"],
        at=row["dead_lettered_at"],
        service=row["service"],
        error_class=row["error_class"],
        error_message=row["error_message"],
        shop_id=row["shop_id"],
        replayed=row["replayed"],
    )


async def replay_positions(
    kafka: KafkaConnection,
    database_url: str,
    scope: Scope,
    positions: frozenset[Position],
) -> ReplayReport:
    """Replay these dead letters, each of the scope, else NotTheShops and nothing replayed.
    One replayed before is skipped, as the command line skips it."""
    selection = scope.selection(positions=positions)
    looked = await replay(kafka=kafka, database_url=database_url, selection=selection, dry_run=True)
    if len(looked.selected) + looked.already_replayed != len(positions):
        raise NotTheShops
    return await replay(kafka=kafka, database_url=database_url, selection=selection)


async def replay_class(
    kafka: KafkaConnection,
    database_url: str,
    scope: Scope,
    *,
    error_class: str,
    topic: str | None,
) -> ReplayReport:
    """Replay every dead letter of the scope with this error class (of one topic, or all)."""
    selection = scope.selection(topic, error_class=error_class)
    return await replay(kafka=kafka, database_url=database_url, selection=selection)
