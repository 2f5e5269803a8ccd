"""Dead letters as read back from the <topic>.dlq topics, with what their headers say."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.callers import DEFAULT_SHOP
from shared.correlation import header_value
from shared.kafka_connection import KafkaConnection, check_access, kafka_connection
from shared.topics import ALL_TOPICS, dlq

Header = tuple[str, bytes]

DLQ_HEADER_PREFIX = "x-dlq-"
DLQ_SUFFIX = ".dlq"
# Added on replay so that a record dead-lettered again shows where it was replayed from.
REPLAY_OF_HEADER = "x-replay-of"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic."""

    dlq_topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: tuple[Header, ...]

    @property
    def position(self) -> str:
        return f"{self.dlq_topic}/{self.partition}/{self.offset}"

    @property
    def identity(self) -> tuple[str, int, int, int]:
        """Position plus timestamp: a recreated topic reusing offsets is not mistaken for it."""
        return (self.dlq_topic, self.partition, self.offset, self.timestamp_ms)

    @property
    def original_topic(self) -> str:
        return header_value(self.headers, "x-dlq-topic") or self.dlq_topic.removesuffix(".dlq")

    @property
    def error_class(self) -> str:
        return header_value(self.headers, "x-dlq-error-class") or "unknown"

    @property
    def error_message(self) -> str:
        return header_value(self.headers, "x-dlq-error-message") or ""

    @property
    def service(self) -> str:
        return header_value(self.headers, "x-dlq-service") or "unknown"

    @property
    def dead_lettered_at(self) -> str:
        stamp = header_value(self.headers, "x-dlq-time")
        return stamp or datetime.fromtimestamp(self.timestamp_ms / 1000, UTC).isoformat()

    @property
    def shop_id(self) -> str | None:
        """The shop of the body's `data.shop_id` (a binary-mode CloudEvent's body is its data);
        a JSON body naming none is the shop `default`'s, as the contracts default it; a body
        that is not JSON has no shop (None)."""
        try:
            body = json.loads(self.value)
        except ValueError:
            return None
        binary = header_value(self.headers, "ce_specversion") is not None
        data = body if binary else body.get("data") if isinstance(body, dict) else None
        shop = data.get("shop_id") if isinstance(data, dict) else None
        return shop if isinstance(shop, str) and shop else DEFAULT_SHOP

    def replay_headers(self) -> list[Header]:
        """The original headers, without the dead-letter ones, plus where this replay came from."""
        kept = [
            (k, v)
            for k, v in self.headers
            if not k.startswith(DLQ_HEADER_PREFIX) and k != REPLAY_OF_HEADER
        ]
        return [*kept, (REPLAY_OF_HEADER, self.position.encode())]


@dataclass(frozen=True)
class ReadOn:
    """Records read on from kept offsets, where to go on from, whether any partition has more
    than was read, the first offset each partition still holds (older ones expired), and the
    partitions read again from their start because the kept offset was past their end."""

    found: list[DeadLetter]
    next_offsets: dict[TopicPartition, int]
    behind: bool
    starts: dict[TopicPartition, int] = field(default_factory=dict)
    restarted: frozenset[TopicPartition] = frozenset()


def dlq_topics(topic: str | None) -> list[str]:
    """The dead-letter topics to look at: one (named with or without .dlq) or all of them."""
    if topic is None:
        return [dlq(t) for t in ALL_TOPICS]
    return [topic if topic.endswith(".dlq") else dlq(topic)]


def parse_position(text: str) -> tuple[str, int, int]:
    """`topic/partition/offset` (topic with or without .dlq) as a position; ValueError if not."""
    topic, partition, offset = text.rsplit("/", 2)
    if not topic:
        raise ValueError(f"no topic in {text!r}")
    return dlq_topics(topic)[0], int(partition), int(offset)


def _from_record(record: Any) -> DeadLetter:
    return DeadLetter(
        dlq_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        timestamp_ms=record.timestamp,
        key=record.key,
        value=record.value or b"",
        headers=tuple((k, v or b"") for k, v in (record.headers or ())),
    )


class DeadLetterReader:
    """Reads dead-letter topics without a consumer group: nothing is committed by looking."""

    def __init__(self, kafka: KafkaConnection | str) -> None:
        self._kafka = kafka_connection(kafka)

    async def __aenter__(self) -> DeadLetterReader:
        # The consumer is made only once the access check passed, and stopped if its start
        # fails or is cancelled (a pass timing out, the service stopping): none is left open.
        await check_access(self._kafka)
        self._consumer = AIOKafkaConsumer(
            **self._kafka.client_options(), enable_auto_commit=False, request_timeout_ms=15_000
        )
        try:
            await self._consumer.start()
        except BaseException:
            await self._consumer.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()

    async def partitions(self, topics: Iterable[str] | None) -> list[TopicPartition]:
        """The partitions of these topics that exist; None: of every `*.dlq` topic there is."""
        admin = AIOKafkaAdminClient(**self._kafka.client_options(), request_timeout_ms=15_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            if topics is None:
                topics = sorted(t for t in existing if t.endswith(DLQ_SUFFIX))
            wanted = [t for t in dict.fromkeys(topics) if t in existing]
            described = await admin.describe_topics(wanted) if wanted else []
        finally:
            await admin.close()
        return [
            TopicPartition(topic["topic"], p["partition"])
            for topic in described
            for p in sorted(topic["partitions"], key=lambda p: int(p["partition"]))
        ]

    async def read(self, topics: Iterable[str], *, newest: int | None = None) -> list[DeadLetter]:
        """Every record present now (or the `newest` of each partition), in partition order."""
        tps = await self.partitions(topics)
        if not tps:
            return []
        starts = await self._consumer.beginning_offsets(tps)
        ends = await self._consumer.end_offsets(tps)
        wanted = {
            tp: (max(starts[tp], ends[tp] - newest) if newest is not None else starts[tp], ends[tp])
            for tp in tps
        }
        return await self._read_ranges({tp: r for tp, r in wanted.items() if r[0] < r[1]})

    async def read_on(self, kept: Mapping[TopicPartition, int], *, most: int) -> ReadOn:
        """Of every `*.dlq` partition, at most `most` records from its kept offset (from its
        start when it has none, or when that offset is gone or past the end: expired, or the
        topic recreated), and the offset of each partition to go on from next time."""
        tps = await self.partitions(None)
        if not tps:
            return ReadOn([], {}, behind=False)
        # Assigned first, the partitions' leaders are known before the offsets are asked for:
        # otherwise the first lookup of topics new to the consumer took 5.5 s (84 partitions).
        self._consumer.assign(tps)
        starts = await self._consumer.beginning_offsets(tps)
        ends = await self._consumer.end_offsets(tps)
        ranges: dict[TopicPartition, tuple[int, int]] = {}
        restarted = set()
        for tp in tps:
            start = kept.get(tp, starts[tp])
            if start > ends[tp]:
                restarted.add(tp)
            if not starts[tp] <= start <= ends[tp]:
                start = starts[tp]
            ranges[tp] = (start, min(ends[tp], start + most))
        found = await self._read_ranges({tp: r for tp, r in ranges.items() if r[0] < r[1]})
        return ReadOn(
            found,
            {tp: end for tp, (_, end) in ranges.items()},
            behind=any(end < ends[tp] for tp, (_, end) in ranges.items()),
            starts=starts,
            restarted=frozenset(restarted),
        )

    async def one(self, topic: str, partition: int, offset: int) -> DeadLetter | None:
        """The record at a position, or None when there is none (never was, or expired)."""
        tp = TopicPartition(topic, partition)
        if tp not in await self.partitions([topic]):
            return None
        start = (await self._consumer.beginning_offsets([tp]))[tp]
        end = (await self._consumer.end_offsets([tp]))[tp]
        if not start <= offset < end:
            return None
        found = await self._read_ranges({tp: (offset, offset + 1)})
        return found[0] if found else None

    async def at(self, positions: Iterable[tuple[str, int, int]]) -> list[DeadLetter]:
        """The records at these positions that exist (never were or expired ones are left out)."""
        wanted = sorted(set(positions))
        known = set(await self.partitions({topic for topic, _, _ in wanted}))
        tps = sorted({tp for t, p, _ in wanted if (tp := TopicPartition(t, p)) in known})
        if not tps:
            return []
        starts = await self._consumer.beginning_offsets(tps)
        ends = await self._consumer.end_offsets(tps)
        found: list[DeadLetter] = []
        for topic, partition, offset in wanted:
            tp = TopicPartition(topic, partition)
            if tp in starts and starts[tp] <= offset < ends[tp]:
                found += await self._read_ranges({tp: (offset, offset + 1)})
        return found

    async def _read_ranges(self, ranges: dict[TopicPartition, tuple[int, int]]) -> list[DeadLetter]:
        if not ranges:
            return []
        self._consumer.assign(list(ranges))
        for tp, (start, _) in ranges.items():
            self._consumer.seek(tp, start)
        found: list[DeadLetter] = []
        pending = dict(ranges)
        while pending:
            batch = await self._consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batch.items():
                end = pending[tp][1]
                found.extend(_from_record(r) for r in records if r.offset < end)
                if records and records[-1].offset >= end - 1:
                    del pending[tp]
                    self._consumer.pause(tp)
            if not batch and await self._reached_ends(pending):
                break  # only compaction or transaction markers were left before the end
        self._consumer.unsubscribe()
        return sorted(found, key=lambda d: (d.dlq_topic, d.partition, d.offset))

    async def _reached_ends(self, pending: dict[TopicPartition, tuple[int, int]]) -> bool:
        positions = [await self._consumer.position(tp) for tp in pending]
        return all(pos >= end for pos, (_, end) in zip(positions, pending.values(), strict=True))
