"""A service started before its database and broker are up: it stays alive, says what it waits
for, becomes ready once they answer, and consumes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from private_postgres import PrivatePostgres
from support import encoded, eventually, order_paid, start_service_groups_at_end, unique

from services import processes
from shared.settings import CommonSettings

DOWN_S = 20
WAITING_FOR_BROKER = '"waiting_for": "broker"'


class BrokerDoor:
    """A port that refuses connections until opened, then forwards to the real broker: to the
    service, a broker that is not up yet and then comes up (its metadata names the real
    listener, so only the first connections go through here)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self.port = processes.free_port()
        self._server: asyncio.Server | None = None

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def observe(
    url: str, seconds: float, until: str | None = None
) -> tuple[set[int], list[tuple[int, str]]]:
    """Liveness codes and readiness answers, twice a second for `seconds`, or until a
    readiness answer holds `until`."""
    live: set[int] = set()
    ready: list[tuple[int, str]] = []
    deadline = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                live.add((await client.get("/healthz")).status_code)
                answer = await client.get("/readyz")
                ready.append((answer.status_code, answer.text))
                if until is not None and until in answer.text:
                    break
            await asyncio.sleep(0.5)
    return live, ready


async def test_service_started_before_its_dependencies_waits_for_them_and_consumes(
    infrastructure: Endpoints,
) -> None:
    prefix = unique("early")
    await start_service_groups_at_end(
        infrastructure.kafka_bootstrap,
        CommonSettings(consumer_group_prefix=prefix),
        "earn",
        ["shop.orders", "loyalty.tiers", "shop.customers", "shop.engagement"],
    )
    database = PrivatePostgres()
    door = BrokerDoor(infrastructure.kafka_bootstrap)
    earn = processes.ServiceProcess(
        "earn",
        env={
            "LOYALTY_LOG_FORMAT": "json",
            "LOYALTY_CONSUMER_GROUP_PREFIX": prefix,
            "LOYALTY_DATABASE_URL": database.url,
            "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{door.port}",
            "LOYALTY_MONITOR_INTERVAL_S": "1",
        },
        log_dir=Path(".local/test-logs"),
    )
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    try:
        earn.launch()
        live_down, ready_down = await observe(earn.url, DOWN_S)
        assert earn.running(), f"exited with {earn.process and earn.process.returncode}"
        await asyncio.to_thread(database.start)
        # The next attempt comes within the backoff's cap (10 s), then it waits for the broker.
        live_half, ready_half = await observe(earn.url, 60, until=WAITING_FOR_BROKER)
        assert earn.running()
        await door.open()

        async def readiness() -> int:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{earn.url}/readyz")).status_code

        await eventually(readiness, lambda code: code == 200, timeout=90)

        event = order_paid(unique("early"), total="7", currency="USD")
        await producer.start()
        await producer.send_and_wait("shop.orders", encoded(event), key=event.subject.encode())
        db = await asyncpg.connect(database.url)
        try:

            async def recorded() -> int:
                return int(
                    await db.fetchval(
                        "SELECT count(*) FROM earn.orders WHERE order_id = $1",
                        event.data.order_id,
                    )
                )

            await eventually(recorded, lambda n: n == 1, timeout=60)
        finally:
            await db.close()
        assert earn.stop() == 0
    finally:
        await producer.stop()
        earn.kill()
        await door.close()
        database.remove()

    assert live_down == live_half == {200}
    assert ready_down, "the service answered no readiness probe while its dependencies were down"
    assert {code for code, _ in ready_down + ready_half} == {503}
    assert '"waiting_for": "database"' in ready_down[-1][1]
    assert WAITING_FOR_BROKER in ready_half[-1][1]
