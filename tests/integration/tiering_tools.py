"""Helpers of the tiering integration tests: the command line, publishing, reading state."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from shared.events import CloudEvent, encode_event, topic_for


async def loyalty(*args: str, env: dict[str, str] | None = None) -> str:
    """Run `loyalty ARGS...` as a separate process, as an operator would; its stdout."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=240)
    assert process.returncode == 0, err.decode()[-3000:]
    return out.decode()


async def publish(producer: AIOKafkaProducer, *events: CloudEvent[Any]) -> None:
    for event in events:
        await producer.send_and_wait(
            topic_for(event.type), encode_event(event), key=event.subject.encode()
        )


async def tier_row(db: asyncpg.Pool, customer: str) -> asyncpg.Record | None:
    return await db.fetchrow("SELECT * FROM tiering.customers WHERE customer_id = $1", customer)


async def net_total(db: asyncpg.Pool, customer: str) -> Any:
    return await db.fetchval(
        "SELECT coalesce(sum(added - removed), 0) FROM tiering.contributions"
        " WHERE customer_id = $1",
        customer,
    )


def body(record: Any) -> dict[str, Any]:
    return dict(json.loads(record.value))
