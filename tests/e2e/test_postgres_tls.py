"""PostgreSQL over TLS, with only LOYALTY_DATABASE_URL to say so: `loyalty migrate` and a service
over sslmode=verify-full with a client certificate; a server the CA does not vouch for leaves
the service waiting and saying why; sslmode=require encrypts without authenticating."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import trustme
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from private_postgres import PrivatePostgres
from support import (
    encoded,
    eventually,
    loyalty_command,
    order_paid,
    start_service_groups_at_end,
    unique,
)

from services import processes
from shared.db import create_pool
from shared.settings import CommonSettings

EARN_TOPICS = ["shop.orders", "loyalty.tiers", "shop.customers", "shop.engagement"]
# The only key of pg_stat_ssl that says whether this very connection is encrypted.
OWN_SSL = "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


@dataclass(frozen=True)
class TlsPostgres:
    """A server with ssl=on that takes only TLS connections with a client certificate."""

    url: str
    ca: Path  # the CA that signed the server's and the client's certificates
    other_ca: Path  # a CA that signed neither
    client_cert: Path
    client_key: Path

    def dsn(self, sslmode: str, root: Path | None = None) -> str:
        query = f"sslmode={sslmode}&sslcert={self.client_cert}&sslkey={self.client_key}"
        return f"{self.url}?{query}" + (f"&sslrootcert={root}" if root else "")


@pytest.fixture(scope="module")
def tls_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsPostgres]:
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    # cert authentication takes the user name from the certificate's common name.
    client = ca.issue_cert("loyalty@clients.example", common_name="loyalty")
    database = PrivatePostgres(
        hba=["local all all trust", "hostssl all all 127.0.0.1/32 cert"],
    )
    database.configure(
        ssl="on",
        ssl_cert_file=str(database.place("server.crt", server.cert_chain_pems[0].bytes())),
        ssl_key_file=str(database.place("server.key", server.private_key_pem.bytes())),
        ssl_ca_file=str(database.place("ca.crt", ca.cert_pem.bytes())),
    )
    files = tmp_path_factory.mktemp("pg-tls")
    ca.cert_pem.write_to_path(str(files / "ca.pem"))
    other.cert_pem.write_to_path(str(files / "other-ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(files / "client.crt"))
    client.private_key_pem.write_to_path(str(files / "client.key"))
    (files / "client.key").chmod(0o600)  # as libpq wants a key file to be
    database.start()
    try:
        yield TlsPostgres(
            database.url,
            files / "ca.pem",
            files / "other-ca.pem",
            files / "client.crt",
            files / "client.key",
        )
    finally:
        database.remove()


def loyalty(database_url: str, kafka: str, *args: str) -> subprocess.CompletedProcess[str]:
    return loyalty_command(
        *args,
        env={
            "LOYALTY_DATABASE_URL": database_url,
            "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": kafka,
            "LOYALTY_LOG_FORMAT": "json",
        },
        timeout=120,
    )


def earn_process(database_url: str, prefix: str) -> processes.ServiceProcess:
    return processes.ServiceProcess(
        "earn",
        env={
            "LOYALTY_LOG_FORMAT": "json",
            "LOYALTY_CONSUMER_GROUP_PREFIX": prefix,
            "LOYALTY_DATABASE_URL": database_url,
            "LOYALTY_MONITOR_INTERVAL_S": "1",
        },
        log_dir=Path(".local/test-logs"),
    )


async def test_migrate_and_earn_work_over_verify_full_with_a_client_certificate(
    infrastructure: Endpoints, tls_postgres: TlsPostgres
) -> None:
    url = tls_postgres.dsn("verify-full", tls_postgres.ca)
    prefix = unique("pgtls")
    await start_service_groups_at_end(
        infrastructure.kafka_bootstrap,
        CommonSettings(consumer_group_prefix=prefix),
        "earn",
        EARN_TOPICS,
    )

    migrated = await asyncio.to_thread(loyalty, url, infrastructure.kafka_bootstrap, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "earn: " in migrated.stdout

    earn = earn_process(url, prefix)
    customer = unique("pgtls")
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    db = await asyncpg.connect(url)
    try:
        await asyncio.to_thread(earn.start, 90.0)
        await producer.start()
        event = order_paid(customer)
        await producer.send_and_wait("shop.orders", encoded(event), key=customer.encode())
        earned = await eventually(
            lambda: db.fetch(
                "SELECT kind, delta FROM earn.ledger WHERE customer_id = $1", customer
            ),
            lambda rows: len(rows) == 1,
        )
        # The server takes no other kind of connection (pg_hba: hostssl ... cert): every
        # session of the service is encrypted and authenticated by its certificate.
        sessions = await db.fetch(
            "SELECT s.ssl, s.client_dn FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
            "WHERE a.backend_type = 'client backend'"
        )
        assert earn.stop() == 0
    finally:
        await producer.stop()
        await db.close()
        earn.kill()

    assert earned[0]["kind"] == "earned"
    assert earned[0]["delta"] > 0
    assert len(sessions) > 1
    assert all(s["ssl"] and s["client_dn"].endswith("/CN=loyalty") for s in sessions)


async def test_a_server_certificate_the_ca_does_not_vouch_for_keeps_earn_waiting_and_says_why(
    tls_postgres: TlsPostgres,
) -> None:
    earn = earn_process(tls_postgres.dsn("verify-full", tls_postgres.other_ca), unique("pgtls"))
    answers: list[httpx.Response] = []
    try:
        earn.launch()

        async def readiness() -> httpx.Response | None:
            async with httpx.AsyncClient(timeout=2) as client:
                try:
                    answers.append(await client.get(f"{earn.url}/readyz"))
                except httpx.TransportError:
                    return None
                return answers[-1]

        # Two attempts at least: the service retries, and says the same thing each time.
        await eventually(
            readiness,
            lambda answer: answer is not None and "certificate verify failed" in answer.text,
        )
        await asyncio.sleep(3)
        still = await readiness()
        assert earn.running()
    finally:
        earn.kill()

    assert still is not None
    assert still.status_code == 503
    assert still.json()["waiting_for"] == "database"
    assert "SSLCertVerificationError" in still.json()["startup_error"]
    assert earn.log_path is not None
    log = earn.log_path.read_text()
    assert "Traceback" not in log
    told = [line for line in log.splitlines() if "certificate verify failed" in line]
    assert len(told) >= 2
    assert all('"event": "service_start_waiting"' in line for line in told), told


async def test_migrate_refused_by_the_server_certificate_says_so_in_one_line(
    infrastructure: Endpoints, tls_postgres: TlsPostgres
) -> None:
    url = tls_postgres.dsn("verify-full", tls_postgres.other_ca)

    done = await asyncio.to_thread(loyalty, url, infrastructure.kafka_bootstrap, "migrate")

    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "cannot connect to the database" in lines[0]
    assert "certificate verify failed" in lines[0]


async def test_sslmode_require_encrypts_but_takes_any_server_certificate(
    tls_postgres: TlsPostgres,
) -> None:
    # No CA: the certificate is not checked at all (libpq's meaning of require), so a server
    # impersonating the database would be taken too; verify-full is what authenticates it.
    pool = await create_pool(tls_postgres.dsn("require"), min_size=1, max_size=1)
    try:
        row = await pool.fetchrow(OWN_SSL)
    finally:
        await pool.close()

    assert row is not None
    assert row["ssl"] is True


async def test_sslmode_require_with_a_root_certificate_checks_the_chain_as_verify_ca(
    tls_postgres: TlsPostgres,
) -> None:
    with pytest.raises(ssl.SSLCertVerificationError) as refused:
        await create_pool(
            tls_postgres.dsn("require", tls_postgres.other_ca), min_size=1, max_size=1
        )

    assert "certificate verify failed" in str(refused.value)
