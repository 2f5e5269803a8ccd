"""Which record batch could not be decoded, read from aiokafka's own unpacking of a corrupt
one, and what readiness says of it."""

from __future__ import annotations

import json

import pytest
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from shared.monitoring import Readiness
from shared.undecodable import UndecodableBatch, undecodable_batch

LZ4 = 3


def corrupt_lz4_batch(base_offset: int, records: int) -> bytes:
    """An lz4 record batch whose compressed bytes were damaged after it was written."""
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=LZ4, is_transactional=0, producer_id=-1, producer_epoch=-1,
        base_sequence=-1, batch_size=1 << 20,
    )  # fmt: skip
    for offset in range(records):
        builder.append(offset, timestamp=None, key=b"c-1", value=b"x" * 500, headers=[])
    batch = bytearray(builder.build())
    batch[0:8] = base_offset.to_bytes(8, "big")
    for at in range(70, 90):  # past the 61-byte batch header: inside the lz4 frame
        batch[at] ^= 0xFF
    return bytes(batch)


def unpacking_error(batch: bytes, *, check_crcs: bool) -> Exception:
    records = PartitionRecords(
        TopicPartition("shop.orders", 2), MemoryRecords(batch), [], 40, None, None, check_crcs, 0
    )
    with pytest.raises(Exception) as caught:  # whatever aiokafka or the codec raises
        list(records)
    assert isinstance(caught.value, Exception)
    return caught.value


def test_a_batch_failing_its_checksum_is_named_with_its_offsets_and_codec() -> None:
    error = unpacking_error(corrupt_lz4_batch(40, 5), check_crcs=True)

    batch = undecodable_batch(error)

    assert batch is not None
    assert (batch.topic, batch.partition, batch.offset, batch.last_offset, batch.codec) == (
        "shop.orders", 2, 40, 44, "lz4",
    )  # fmt: skip
    assert "Invalid CRC" in batch.reason


def test_a_batch_whose_compressed_bytes_are_corrupt_is_named_with_the_codecs_error() -> None:
    error = unpacking_error(corrupt_lz4_batch(40, 5), check_crcs=False)

    batch = undecodable_batch(error)

    assert batch is not None
    assert batch.codec == "lz4"
    assert batch.reason.startswith("DecompressionError: lz4")


def test_an_error_raised_elsewhere_names_no_batch() -> None:
    with pytest.raises(ValueError) as caught:
        json.loads(b"{")

    assert undecodable_batch(caught.value) is None


def test_readiness_fails_naming_the_batch_that_holds_up_a_partition() -> None:
    batch = UndecodableBatch("shop.orders", 2, 40, 44, "lz4", "UnsupportedCodecError: lz4")
    readiness = Readiness(checks={"codecs": False}, undecodable=(batch,))

    body = json.loads(readiness.to_json())

    assert not readiness.ready
    assert body["undecodable"] == [
        {"topic": "shop.orders", "partition": 2, "offset": 40, "last_offset": 44,
         "codec": "lz4", "reason": "UnsupportedCodecError: lz4"}
    ]  # fmt: skip
