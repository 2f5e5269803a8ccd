"""The consumer under every subscriber, in a process that cannot import the lz4 library, reading
an lz4 batch on one partition and plain records on another of the real broker: the plain
records all come (none lost with a failed poll) and the lz4 partition is set aside, named."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from confluent_kafka import Producer
from infrastructure import Endpoints
from support import unique

from shared.topics import ensure_topics

WITHOUT_CRAMJAM = Path(__file__).parent.parent / "without_cramjam"

# Polls as the FastStream subscriber does (commit after each batch), then prints what it got.
READER = """
import asyncio, json, sys, time
from shared.undecodable import SetAsideConsumer

async def main(bootstrap, topic, expected):
    consumer = SetAsideConsumer(topic, bootstrap_servers=bootstrap, group_id=topic,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    got, deadline = [], time.monotonic() + 30
    try:
        while time.monotonic() < deadline and (len(got) < expected or not consumer.undecodable):
            for records in (await consumer.getmany(timeout_ms=200)).values():
                got += [[r.partition, r.offset, r.value.decode()[:8]] for r in records]
                await consumer.commit()
        print(json.dumps({"got": got, "set_aside": [b.as_json() for b in consumer.undecodable]}))
    finally:
        await consumer.stop()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def produce(bootstrap: str, topic: str, partition: int, codec: str, values: list[bytes]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                         "linger.ms": 100, "acks": "all"})  # fmt: skip
    for value in values:
        producer.produce(topic, value, b"k", partition)
    assert producer.flush(30) == 0


async def test_plain_partitions_are_all_read_while_an_lz4_one_is_set_aside(
    infrastructure: Endpoints,
) -> None:
    bootstrap = infrastructure.kafka_bootstrap
    # Several topics: which partition's records a poll unpacks first varies from one to another.
    for _ in range(3):
        topic = unique("tests.undecodable")
        await ensure_topics(bootstrap, [topic], partitions=2)
        plain = [b"plain-%d" % i for i in range(3)]
        await asyncio.to_thread(produce, bootstrap, topic, 0, "none", plain)
        # Compressible, or librdkafka would send the batch uncompressed.
        packed = [b"lz4-%d-" % i + b"x" * 2000 for i in range(5)]
        await asyncio.to_thread(produce, bootstrap, topic, 1, "lz4", packed)
        await asyncio.to_thread(produce, bootstrap, topic, 1, "none", [b"behind"])

        path = os.environ.get("PYTHONPATH", "")  # the shifted clock's, under shifted clocks
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", READER, bootstrap, topic, str(len(plain))],
            env=os.environ | {"PYTHONPATH": os.pathsep.join([str(WITHOUT_CRAMJAM), path])},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        seen = json.loads(done.stdout.splitlines()[-1])

        assert seen["got"] == [[0, 0, "plain-0"], [0, 1, "plain-1"], [0, 2, "plain-2"]]
        assert seen["set_aside"] == [
            {"topic": topic, "partition": 1, "offset": 0, "last_offset": 4, "codec": "lz4",
             "reason": "UnsupportedCodecError: Libraries for lz4 compression codec not found"}
        ]  # fmt: skip
