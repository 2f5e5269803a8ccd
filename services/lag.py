"""How far each service's consumer groups are: how a producer learns its records were applied.

A service commits a partition's offset only after the transaction that applied (or
dead-lettered) every record before it: once a group's committed offset of a partition is past
a record's offset, the service has applied that record, exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from shared.kafka_connection import KafkaConnection, check_access, kafka_connection


@dataclass(frozen=True)
class Position:
    """Where one group stands in one partition."""

    service: str
    group: str
    topic: str
    partition: int
    # The offset of the next record the group will apply; None when it never committed here.
    committed: int | None
    end: int

    @property
    def lag(self) -> int:
        """Records of the partition the group has not applied yet."""
        return self.end - (self.committed or 0)

    def applied(self, offset: int) -> bool:
        """Whether the record at `offset` of this partition is applied."""
        return self.committed is not None and self.committed > offset

    def to_json(self) -> dict[str, object]:
        return asdict(self) | {"lag": self.lag}


async def positions(
    kafka: KafkaConnection | str, groups: Mapping[tuple[str, str], str]
) -> list[Position]:
    """The position of each (service, topic) -> group in every partition of the topic.

    A group that never committed in a partition reads it from its beginning: its lag counts
    every record the partition has ever had (records deleted by retention are counted too,
    which can only overstate it).
    """
    await check_access(kafka)
    options = kafka_connection(kafka).client_options()
    admin = AIOKafkaAdminClient(**options, request_timeout_ms=15_000)
    reader = AIOKafkaConsumer(**options, enable_auto_commit=False, request_timeout_ms=15_000)
    await admin.start()
    try:
        await reader.start()
        try:
            topics = sorted({topic for _service, topic in groups})
            described = await admin.describe_topics(topics)
            partitions = {
                t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in described
            }
            every = [TopicPartition(t, p) for t in topics for p in partitions.get(t, [])]
            ends = await reader.end_offsets(every) if every else {}
            found: list[Position] = []
            for (service, topic), group in sorted(groups.items()):
                committed = await admin.list_consumer_group_offsets(group)
                for partition in partitions.get(topic, []):
                    tp = TopicPartition(topic, partition)
                    offset = committed.get(tp)
                    found.append(
                        Position(
                            service=service,
                            group=group,
                            topic=topic,
                            partition=partition,
                            committed=offset.offset if offset and offset.offset >= 0 else None,
                            end=ends[tp],
                        )
                    )
            return found
        finally:
            await reader.stop()
    finally:
        await admin.close()


def table(found: Iterable[Position]) -> str:
    """The positions as an aligned text table."""
    rows = [("service", "group", "topic", "partition", "committed", "end", "lag")]
    rows += [
        (
            p.service,
            p.group,
            p.topic,
            str(p.partition),
            "-" if p.committed is None else str(p.committed),
            str(p.end),
            str(p.lag),
        )
        for p in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.rjust(w) if i >= 3 else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )
