"""Replaying dead letters to their topics once, remembering each one replayed in PostgreSQL.

A replay publishes the original key, bytes and headers (less the x-dlq-* ones) with an
idempotent acks=all producer, then records the dead letter's position in dlq.replays; a
second run skips what is recorded. A crash between the acknowledgement and the record
republishes that chunk on the next run, which changes nothing: consumers deduplicate by event
id, and a dead letter that was never applied has no effect to repeat.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer

from services.dlq.records import DeadLetter, DeadLetterReader
from shared.db import Connection, apply_migrations, create_pool
from shared.errors import LoyaltyError
from shared.kafka_connection import KafkaConnection, kafka_connection

SCHEMA = "dlq"
MIGRATIONS = Path(__file__).parent / "migrations"
CHUNK = 500
_LOCK_KEY = int.from_bytes(hashlib.sha256(b"loyalty-dlq-replay").digest()[:8], "big", signed=True)


class ReplayBusy(LoyaltyError):
    """Another replay holds the lock; two at once could publish the same dead letter twice."""


Position = tuple[str, int, int]


@dataclass(frozen=True)
class Selection:
    """Which dead letters to consider; None means any. `shop` is the body's `data.shop_id`
    (DeadLetter.shop_id); a body that is not JSON has no shop and matches a `shop` only with
    `shopless` (a platform operator's choice). `positions` are (dlq topic, partition, offset)."""

    topics: list[str]
    error_class: str | None = None
    service: str | None = None
    key: str | None = None
    shop: str | None = None
    shopless: bool = False
    positions: frozenset[Position] | None = None

    def matches(self, dead: DeadLetter) -> bool:
        return (
            (self.error_class is None or dead.error_class == self.error_class)
            and (self.service is None or dead.service == self.service)
            and (self.key is None or dead.key == self.key.encode())
            and self._shop_matches(dead)
            and (
                self.positions is None
                or (dead.dlq_topic, dead.partition, dead.offset) in self.positions
            )
        )

    def _shop_matches(self, dead: DeadLetter) -> bool:
        if self.shop is None:
            return True
        shop = dead.shop_id
        return shop == self.shop or (shop is None and self.shopless)

    async def read(self, reader: DeadLetterReader) -> list[DeadLetter]:
        """The records of the selection's topics; only those at its positions when it has any."""
        if self.positions is None:
            return await reader.read(self.topics)
        return await reader.at(p for p in self.positions if p[0] in self.topics)


@dataclass
class ReplayReport:
    """What a run found and did."""

    selected: list[DeadLetter] = field(default_factory=list)
    already_replayed: int = 0
    replayed: list[DeadLetter] = field(default_factory=list)

    def by_target(self, items: Sequence[DeadLetter]) -> dict[str, int]:
        return dict(Counter(f"{d.original_topic} ({d.error_class})" for d in items))


async def replayed_positions(
    conn: Connection, topics: Sequence[str]
) -> set[tuple[str, int, int, int]]:
    """(topic, partition, offset, record timestamp) of every dead letter already replayed."""
    rows = await conn.fetch(
        f"""SELECT dlq_topic, dlq_partition, dlq_offset, record_timestamp
            FROM {SCHEMA}.replays WHERE dlq_topic = ANY($1::text[])""",
        list(topics),
    )
    return {(r[0], r[1], r[2], r[3]) for r in rows}


async def replay(
    *,
    kafka: KafkaConnection | str,
    database_url: str,
    selection: Selection,
    dry_run: bool = False,
    progress: Callable[[int], None] = lambda _n: None,
    on_total: Callable[[int], None] = lambda _n: None,
) -> ReplayReport:
    """Replay the selected dead letters not replayed before; a dry run only reports them."""
    async with DeadLetterReader(kafka) as reader:
        found = await selection.read(reader)
    report = ReplayReport()
    pool = await create_pool(database_url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, SCHEMA, [("dlq", MIGRATIONS)])
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_KEY):
                raise ReplayBusy("another `loyalty dlq replay` is running; try again after it")
            try:
                done = await replayed_positions(conn, selection.topics)
                matching = [d for d in found if selection.matches(d)]
                report.already_replayed = sum(d.identity in done for d in matching)
                report.selected = [d for d in matching if d.identity not in done]
                if not dry_run and report.selected:
                    on_total(len(report.selected))
                    await _publish(kafka_connection(kafka), conn, report, progress)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await pool.close()
    return report


async def _publish(
    kafka: KafkaConnection,
    conn: Connection,
    report: ReplayReport,
    progress: Callable[[int], None],
) -> None:
    producer = AIOKafkaProducer(
        **kafka.client_options(),
        client_id="loyalty-dlq-replay",
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=15_000,
    )
    await producer.start()
    try:
        for start in range(0, len(report.selected), CHUNK):
            chunk = report.selected[start : start + CHUNK]
            pending = [
                await producer.send(
                    d.original_topic, value=d.value, key=d.key, headers=d.replay_headers()
                )
                for d in chunk
            ]
            for future in pending:
                await future
            await _record(conn, chunk)
            report.replayed.extend(chunk)
            progress(len(chunk))
    finally:
        await producer.stop()


async def _record(conn: Connection, chunk: Sequence[DeadLetter]) -> None:
    await conn.executemany(
        f"""INSERT INTO {SCHEMA}.replays
                (dlq_topic, dlq_partition, dlq_offset, record_timestamp, target_topic, error_class)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (dlq_topic, dlq_partition, dlq_offset) DO UPDATE
               SET record_timestamp = excluded.record_timestamp,
                   target_topic = excluded.target_topic,
                   error_class = excluded.error_class,
                   replayed_at = now()""",
        [
            (d.dlq_topic, d.partition, d.offset, d.timestamp_ms, d.original_topic, d.error_class)
            for d in chunk
        ],
    )
