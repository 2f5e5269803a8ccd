"""The engine through a broker's SASL_SSL (SCRAM, PLAIN) and mutual-TLS listeners, and refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import structlog
from aiokafka import AIOKafkaProducer
from earn_support import earn_of_its_own
from infrastructure import Endpoints
from notify_support import SmtpInbox, notify_customer, signed_up
from pydantic import SecretStr
from secure_kafka import (
    PLAIN_PASSWORD,
    PLAIN_USER,
    SCRAM_PASSWORD,
    CertificateAuthority,
    SecureBroker,
    environment,
)
from support import (
    TopicTail,
    database_of_its_own,
    encoded,
    eventually,
    order_paid,
    own_groups,
    running,
    unique,
)
from tiering_tools import loyalty, tier_row, tiering_settings

from services.earn.bootstrap import bootstrap as earn_bootstrap
from services.earn.settings import EarnSettings
from services.notify.bootstrap import bootstrap as notify_bootstrap
from services.notify.bootstrap import make_worker
from services.notify.settings import NotifySettings
from services.tiering.bootstrap import bootstrap as tiering_bootstrap
from services.tiering.settings import TieringSettings
from shared.clock import FixedClock
from shared.kafka_connection import KafkaConnection
from shared.settings import CommonSettings
from shared.topics import ensure_topics

# 10:00 in Ho Chi Minh City (UTC+7): outside notify's default quiet hours.
T0 = datetime(2031, 6, 1, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def secure_broker() -> Iterator[SecureBroker]:
    """One broker for the module: it takes 10-20 s to start."""
    broker = SecureBroker()
    try:
        yield broker.start()
    finally:
        broker.stop()


def connection(values: dict[str, Any]) -> KafkaConnection:
    return KafkaConnection.from_settings(CommonSettings.model_validate(values))


@contextlib.asynccontextmanager
async def producer_of(kafka: KafkaConnection) -> AsyncIterator[AIOKafkaProducer]:
    producer = AIOKafkaProducer(**kafka.client_options(), acks="all")
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def round_trip(kafka: KafkaConnection) -> tuple[list[str], bytes]:
    """A topic created through the admin client, and a record produced and consumed on it."""
    topic = unique("security.check")
    created = await ensure_topics(kafka, [topic], partitions=1)
    async with TopicTail(kafka, topic) as tail, producer_of(kafka) as producer:
        await producer.send_and_wait(topic, b"hello", key=b"k")
        (record,) = await tail.collect(lambda r: r.key == b"k", count=1)
    return created, record.value


async def test_earn_awards_points_for_an_order_through_sasl_ssl_scram_sha_256(
    secure_broker: SecureBroker, infrastructure: Endpoints
) -> None:
    values = secure_broker.scram("SCRAM-SHA-256")
    kafka = connection(values)
    customer = unique("c")
    async with (
        earn_of_its_own(infrastructure, "earn_tls", **values) as earn,
        TopicTail(kafka, "loyalty.points") as points,
        producer_of(kafka) as producer,
    ):
        await producer.send_and_wait(
            "shop.orders", encoded(order_paid(customer, total="259000")), key=customer.encode()
        )
        db = await asyncpg.connect(earn.database_url)
        try:
            entries = await eventually(
                lambda: db.fetch("SELECT * FROM earn.ledger WHERE customer_id = $1", customer),
                lambda rows: len(rows) == 1,
            )
        finally:
            await db.close()
        published = await points.collect(lambda r: r.key == customer.encode(), count=1)

    assert (entries[0]["kind"], entries[0]["delta"]) == ("earned", 25)
    assert json.loads(published[0].value)["type"] == "points.earned"


async def test_tiering_upgrades_a_customer_through_sasl_ssl_scram_sha_512(
    secure_broker: SecureBroker, infrastructure: Endpoints
) -> None:
    values = secure_broker.scram("SCRAM-SHA-512")
    customer = unique("c")
    async with database_of_its_own(infrastructure.database_url, "loyalty_tiering_tls") as url:
        own = {"database_url": SecretStr(url)}
        settings = TieringSettings(**(tiering_settings(infrastructure).model_dump() | values | own))
        app, runtime = tiering_bootstrap(settings)
        async with running(app, runtime), producer_of(connection(values)) as producer:
            for total in ("3000000", "2500000"):
                event = order_paid(customer, total=total)
                await producer.send_and_wait("shop.orders", encoded(event), key=customer.encode())
            row = await eventually(
                lambda: tier_row(runtime.require_pool(), customer),
                lambda found: found is not None and found["tier"] == "silver",
            )

    assert row is not None
    assert row["tier"] == "silver"


async def test_notify_emails_a_welcome_through_sasl_ssl_scram(
    secure_broker: SecureBroker,
    infrastructure: Endpoints,
    notify_settings: NotifySettings,
    smtp: SmtpInbox,
) -> None:
    values = secure_broker.scram("SCRAM-SHA-256")
    customer = notify_customer()
    email = f"{customer}@mail.example"
    async with database_of_its_own(infrastructure.database_url, "loyalty_notify_tls") as url:
        own = {"database_url": SecretStr(url), "consumer_group_prefix": own_groups()}
        settings = NotifySettings(**(notify_settings.model_dump() | values | own))
        app, runtime = notify_bootstrap(settings)
        async with running(app, runtime), producer_of(connection(values)) as producer:
            event = signed_up(customer, T0, email=email)
            await producer.send_and_wait("shop.customers", encoded(event), key=customer.encode())
            pool = runtime.require_pool()
            await eventually(
                lambda: pool.fetch(
                    "SELECT * FROM notify.scheduled WHERE customer_id = $1", customer
                ),
                lambda rows: len(rows) >= 1,
            )
            at = T0 + timedelta(minutes=61)
            worker = make_worker(pool, settings, FixedClock(at), lambda: None)
            try:
                outcomes = await worker.run_due(at)
            finally:
                for channel in worker.deliverer.channels.values():
                    await channel.close()

    assert outcomes["sent"] >= 1
    assert smtp.to(email)[0].message["Subject"] == "Chào mừng Nguyễn Văn An!"


async def test_mutual_tls_creates_topics_and_carries_records(secure_broker: SecureBroker) -> None:
    created, value = await round_trip(connection(secure_broker.mutual_tls()))

    assert len(created) == 1
    assert value == b"hello"


async def test_plain_mechanism_creates_topics_and_carries_records(
    secure_broker: SecureBroker,
) -> None:
    values = secure_broker.scram(
        "PLAIN", kafka_sasl_username=PLAIN_USER, kafka_sasl_password=PLAIN_PASSWORD
    )
    created, value = await round_trip(connection(values))

    assert len(created) == 1
    assert value == b"hello"


def cli_environment(values: dict[str, Any], password_file: Path) -> dict[str, str]:
    """The settings as a deployment gives them: the password in a mounted file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALTY_KAFKA_")}
    given = {k: v for k, v in values.items() if k != "kafka_sasl_password"}
    return env | environment(given) | {"LOYALTY_KAFKA_SASL_PASSWORD_FILE": str(password_file)}


async def test_loyalty_publish_takes_the_password_from_a_file(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    values = secure_broker.scram("SCRAM-SHA-512")
    kafka = connection(values)
    password_file = tmp_path / "kafka-password"
    password_file.write_text(SCRAM_PASSWORD + "\n")
    customer = unique("c")
    await ensure_topics(kafka, ["shop.orders"], partitions=2)

    async with TopicTail(kafka, "shop.orders") as orders:
        output = await loyalty(
            "publish", "order.paid", "--customer", customer,
            env=cli_environment(values, password_file),
        )  # fmt: skip
        (record,) = await orders.collect(lambda r: r.key == customer.encode(), count=1)

    assert output.startswith(
        f"published to shop.orders partition {record.partition} offset {record.offset}:"
    )
    assert json.loads(record.value)["subject"] == customer


async def test_loyalty_publish_with_a_wrong_password_fails_in_one_line(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    password_file = tmp_path / "kafka-password"
    password_file.write_text("not-the-password\n")
    env = cli_environment(secure_broker.scram("SCRAM-SHA-256"), password_file)

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "publish", "order.paid",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)

    lines = err.decode().strip().splitlines()
    assert process.returncode == 1
    assert out == b""
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"loyalty: Kafka broker 127.0.0.1:{secure_broker.sasl_ssl_port}: ")
    assert "authentication failed for user 'engine' with mechanism SCRAM-SHA-256" in lines[0]
    assert "not-the-password" not in lines[0]


async def waiting_errors(logs: Sequence[Mapping[str, Any]]) -> list[str]:
    return [e["error"] for e in logs if e["event"] == "service_start_waiting"]


@pytest.mark.parametrize("refusal", ["wrong password", "untrusted CA"])
async def test_a_refused_service_says_why_in_one_line_keeps_trying_and_is_not_ready(
    secure_broker: SecureBroker, infrastructure: Endpoints, tmp_path: Path, refusal: str
) -> None:
    port = secure_broker.sasl_ssl_port
    if refusal == "wrong password":
        changes: dict[str, Any] = {"kafka_sasl_password": "not-the-password"}
        expected = (
            f"Kafka broker 127.0.0.1:{port}: authentication failed for user 'engine' "
            "with mechanism SCRAM-SHA-256"
        )
    else:
        other = CertificateAuthority(tmp_path, "other")
        changes = {"kafka_ssl_ca_file": other.cert}
        expected = (
            f"Kafka broker 127.0.0.1:{port}: certificate of broker not trusted by CA file "
            f"{other.cert}"
        )
    async with database_of_its_own(infrastructure.database_url, "loyalty_refused") as url:
        settings = EarnSettings(
            **secure_broker.scram("SCRAM-SHA-256", **changes),
            database_url=SecretStr(url),
            consumer_group_prefix=own_groups(),
            http_port=None,
            retry_max_backoff_s=0.5,
        )
        app, _ = earn_bootstrap(settings)
        with structlog.testing.capture_logs() as logs:
            start = asyncio.create_task(app.start())
            try:
                # A second attempt: the service keeps trying, as while a broker is down.
                errors = await eventually(
                    lambda: waiting_errors(logs), lambda found: len(found) >= 2
                )
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://earn"
                ) as client:
                    ready = await client.get("/readyz")
            finally:
                start.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await start
                await app.stop()

    assert ready.status_code == 503
    assert ready.json()["waiting_for"] == "broker"
    assert expected in ready.json()["startup_error"]
    assert all(expected in error for error in errors)
    assert not [e for e in logs if e.get("exc_info")]
    assert "not-the-password" not in repr(logs)
    assert SCRAM_PASSWORD not in repr(logs)
