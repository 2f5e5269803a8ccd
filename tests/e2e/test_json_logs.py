"""With LOYALTY_LOG_FORMAT=json every line a service writes, its own and its libraries' (FastStream,
uvicorn, aiokafka, asyncio), is one JSON object: a log pipeline never meets plain text."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from support import encoded, eventually, order_paid, unique


def log_lines(path: Any) -> list[str]:
    return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]


async def test_every_line_of_a_service_log_is_a_json_object(
    infrastructure: Endpoints, spawn: type
) -> None:
    event = order_paid(unique("json"), total="7", currency="USD")
    earn = spawn("earn").start()
    assert earn.log_path is not None
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("shop.orders", b"\x1b[31mnot json{", key=b"json-bad")
        await producer.send_and_wait("shop.orders", encoded(event), key=event.subject.encode())
    finally:
        await producer.stop()
    db = await asyncpg.connect(infrastructure.database_url)
    try:

        async def recorded() -> int:
            return int(
                await db.fetchval(
                    "SELECT count(*) FROM earn.orders WHERE order_id = $1", event.data.order_id
                )
            )

        await eventually(recorded, lambda n: n == 1, timeout=60)
    finally:
        await db.close()
    assert earn.stop() == 0

    lines = log_lines(earn.log_path)
    parsed = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        assert isinstance(record, dict), f"not a JSON object: {line!r}"
        parsed.append(record)
    events = {r.get("event") for r in parsed}
    assert {"service_started", "service_stopped"} <= events
    assert not any("\x1b[" in line for line in lines), "ANSI colour codes in a JSON log"
    assert not [
        r
        for r in parsed
        if r.get("level") == "error" and "GroupCoordinatorNotAvailable" in json.dumps(r)
    ]
