"""Use cases of the operations page: a shop's dead letters, read on demand, and their replay.

The dead letters are read from Kafka when the page is asked for, the newest few of each
partition of every `*.dlq` topic within a time limit (no index of our own). Replay goes
through the `loyalty dlq` tool's own code (services.dlq.replay) and its log, `dlq.replays`:
the console is a second front end of the same tool, so a record replayed here or by the
command line is replayed once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiokafka.errors import KafkaError

from services.dlq.records import DeadLetter, DeadLetterReader, dlq_topics
from services.dlq.replay import SCHEMA, Position, ReplayReport, Selection, replay
from services.dlq.replay import replayed_positions as logged_replays
from shared.db import Connection
from shared.errors import TransientFailure
from shared.kafka_connection import KafkaConnection

# What reaching Kafka may raise: the page then says the dead letters are unavailable.
KAFKA_FAILURES = (KafkaError, OSError, TimeoutError, TransientFailure)


class DeadLettersUnavailable(Exception):
    """Kafka did not answer in time, or refused us: the page says so instead of failing."""


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


async def read_dead_letters(
    kafka: KafkaConnection,
    pool: asyncpg.Pool,
    scope: Scope,
    *,
    topic: str | None,
    error_class: str | None,
    newest: int,
    timeout_s: float,
    shown: int,
) -> ShopDeadLetters:
    """The newest `newest` records of each partition, those of the scope, within `timeout_s`."""
    selection = scope.selection(topic)
    try:
        async with asyncio.timeout(timeout_s), DeadLetterReader(kafka) as reader:
            found = await reader.read(selection.topics, newest=newest)
    except KAFKA_FAILURES as failure:
        raise DeadLettersUnavailable(type(failure).__name__) from failure
    ours = [d for d in found if selection.matches(d)]
    classes = sorted({d.error_class for d in ours})
    if error_class is not None:
        ours = [d for d in ours if d.error_class == error_class]
    ours.sort(key=lambda d: (d.timestamp_ms, d.position), reverse=True)
    async with pool.acquire() as conn:
        done = await replayed_positions(conn, selection.topics)
    rows = [_row(d, replayed=d.identity in done) for d in ours[:shown]]
    return ShopDeadLetters(rows, classes, more=len(ours) > shown)


async def replayed_positions(
    conn: Connection, topics: Sequence[str]
) -> set[tuple[str, int, int, int]]:
    """The tool's log of replays; empty while nothing was ever replayed (no table yet)."""
    if await conn.fetchval("SELECT to_regclass($1)", f"{SCHEMA}.replays") is None:
        return set()
    return await logged_replays(conn, topics)


def _row(dead: DeadLetter, *, replayed: bool) -> DeadLetterRow:
    return DeadLetterRow(
        position=dead.position,
        topic=dead.original_topic,
        at=dead_lettered_at(dead),
        service=dead.service,
        error_class=dead.error_class,
        error_message=dead.error_message,
        shop_id=dead.shop_id,
        replayed=replayed,
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
