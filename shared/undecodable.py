"""Record batches a consumer cannot decode: their partition set aside and said, not retried blind.

A batch compressed with a codec whose library this process lacks, or whose compressed bytes
are corrupt, raises inside aiokafka as its records are unpacked, on every fetch, for ever.
FastStream catches the missing codec (and other Kafka errors) by logging a line that names no
partition and retrying the whole consumer every 15 s (5 s); any other decoding error ends its
consume loop. Worse, records of other partitions taken in the same poll are lost with the
exception while their positions moved on: the next commit of the consumer counts them as
processed.

`SetAsideConsumer` instead pauses that one partition, logs once which batch (topic, partition,
first and last offset, codec, reason), seeks the consumer's other partitions back to their
committed offsets so nothing taken in that poll is skipped, and keeps the batch for readiness
(the `codecs` check fails, naming it). Its records can neither be applied nor passed on to the
dead-letter topic: nothing in this process can read them. The partition is fetched again
after a restart or a rebalance (an installed library, an operator's offset reset).
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

log = structlog.get_logger(__name__)

# The codec bits of a record batch's attributes (Kafka's protocol).
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}


@dataclass(frozen=True, slots=True)
class UndecodableBatch:
    """A record batch that could not be decoded, where it is and why."""

    topic: str
    partition: int
    offset: int  # the batch's first offset
    last_offset: int
    codec: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def undecodable_batch(exc: BaseException) -> UndecodableBatch | None:
    """The batch whose unpacking raised `exc`, or None when it was raised anywhere else.

    aiokafka's errors name no partition: the generator that unpacks a partition's batches
    (`PartitionRecords._unpack_records`) holds it, and the batch, in its frame.
    """
    found: dict[str, Any] | None = None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "_unpack_records" and "tp" in frame.f_locals:
            found = frame.f_locals
            break
        tb = tb.tb_next
    if found is None:
        return None
    tp, batch = found["tp"], found.get("next_batch")
    offset = int(getattr(batch, "base_offset", -1))
    next_offset = int(getattr(batch, "next_offset", offset + 1))
    codec = CODECS.get(int(getattr(batch, "compression_type", -1)), "unknown")
    said = str(exc)  # Kafka's errors name their class already
    name = type(exc).__name__
    reason = (said if said.startswith(name) else f"{name}: {said}")[:300]
    return UndecodableBatch(tp.topic, tp.partition, offset, next_offset - 1, codec, reason)


class SetAsideConsumer(AIOKafkaConsumer):  # type: ignore[misc] # aiokafka has no stubs for it
    """An aiokafka consumer that sets aside a partition whose next batch it cannot decode."""

    def __init__(self, *topics: str, **options: Any) -> None:
        super().__init__(*topics, **options)
        self._set_aside: dict[TopicPartition, UndecodableBatch] = {}
        self._unsettled = False  # other partitions' positions still to take back

    @property
    def undecodable(self) -> tuple[UndecodableBatch, ...]:
        """The batches that hold up a partition of this consumer now."""
        held = self.assignment() & self.paused()
        return tuple(batch for tp, batch in self._set_aside.items() if tp in held)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[ConsumerRecord[Any, Any]]]:
        if self._unsettled and not await self._settle():
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        fetched: dict[TopicPartition, list[ConsumerRecord[Any, Any]]]
        try:
            fetched = await super().getmany(
                *partitions, timeout_ms=timeout_ms, max_records=max_records
            )
        except Exception as exc:
            batch = undecodable_batch(exc)
            if batch is None:
                raise
            self._hold(batch)
            await self._settle()
            return {}
        return fetched

    def _hold(self, batch: UndecodableBatch) -> None:
        tp = TopicPartition(batch.topic, batch.partition)
        self.pause(tp)
        self._set_aside[tp] = batch
        self._unsettled = True
        log.error("kafka_batch_undecodable", **batch.as_json())

    async def _settle(self) -> bool:
        """Take every other partition back to its committed offset: whatever the failed poll
        took from them was lost with its exception. The subscriber commits each batch before
        it polls again, so the committed offsets are where the records not yet handed stand."""
        try:
            for tp in self.assignment() - self.paused():
                committed = await self.committed(tp)
                if committed is None:  # never committed: the group starts at the beginning
                    await self.seek_to_beginning(tp)
                else:
                    self.seek(tp, committed)
        except Exception as exc:  # noqa: BLE001 - tried again before the next poll takes any
            log.warning("kafka_positions_not_restored", error=repr(exc))
            return False
        self._unsettled = False
        return True
