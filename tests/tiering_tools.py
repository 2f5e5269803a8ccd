"""Helpers of the tiering tests: the service and its settings, the command line, publishing,
reading state."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from pydantic import SecretStr
from support import own_groups

from services.tiering.settings import TieringSettings
from shared.events import CloudEvent, encode_event, topic_for
from shared.runtime import Runtime

ADMIN_API_KEY = "test-admin-key"
# What the tests' clients send by default: the configured key, a platform key of tiering.
OPERATOR = {"X-API-Key": ADMIN_API_KEY}


@dataclass(frozen=True)
class TieringService:
    """The running tiering service and a client of its HTTP API."""

    runtime: Runtime
    api: httpx.AsyncClient


def tiering_settings(infrastructure: Endpoints) -> TieringSettings:
    return TieringSettings(
        consumer_group_prefix=own_groups(),
        kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
        database_url=SecretStr(infrastructure.database_url),
        log_format="console",
        batch_timeout_ms=20,
        outbox_idle_poll_s=0.05,
        tiering_admin_api_key=SecretStr(ADMIN_API_KEY),
    )


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
