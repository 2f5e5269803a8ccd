"""Find Kafka and PostgreSQL for tests and tools: environment, testcontainers, or local scripts."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import logging
import os
import shutil
import subprocess
import warnings
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit, urlunsplit

import structlog

from shared.errors import LoyaltyError

KAFKA_ENV: Final = "LOYALTY_KAFKA_BOOTSTRAP_SERVERS"
DATABASE_ENV: Final = "LOYALTY_DATABASE_URL"
KAFKA_PORT_ENV: Final = "LOYALTY_KAFKA_PORT"
PG_PORT_ENV: Final = "LOYALTY_PG_PORT"
TESTCONTAINERS_ENV: Final = "LOYALTY_USE_TESTCONTAINERS"
KAFKA_IMAGE_ENV: Final = "LOYALTY_TEST_KAFKA_IMAGE"
POSTGRES_IMAGE_ENV: Final = "LOYALTY_TEST_POSTGRES_IMAGE"

LOCAL_HOST: Final = "127.0.0.1"
DEFAULT_KAFKA_PORT: Final = 9092
DEFAULT_PG_PORT: Final = 5432
# Kept in step with deploy/local/postgres.sh and deploy/compose.yaml.
PG_ROLE: Final = "loyalty"
PG_PASSWORD: Final = "loyalty"
PG_DATABASE: Final = "loyalty"
MAX_CONNECTIONS: Final = 200
TOPIC_PARTITIONS: Final = 4

DEFAULT_KAFKA_IMAGE: Final = "confluentinc/cp-kafka:7.6.0"
DEFAULT_POSTGRES_IMAGE: Final = "postgres:16"

DEFAULT_DOCKER_SOCKET: Final = Path("/var/run/docker.sock")

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
KAFKA_SCRIPT: Final = REPO_ROOT / "deploy" / "local" / "kafka.sh"
POSTGRES_SCRIPT: Final = REPO_ROOT / "deploy" / "local" / "postgres.sh"

PROBE_TIMEOUT_S: Final = 10.0
# The first local start may resolve the broker from Maven Central or install PostgreSQL with apt.
SCRIPT_TIMEOUT_S: Final = 1800.0

SOURCE_ENVIRONMENT: Final = "environment"
SOURCE_TESTCONTAINERS: Final = "testcontainers"
SOURCE_LOCAL: Final = "local"

FALSE_WORDS: Final = frozenset({"0", "false", "no", "off"})

T = TypeVar("T")

_log = structlog.get_logger()


class InfrastructureError(LoyaltyError):
    """Kafka or PostgreSQL could not be found or started."""


@dataclass(frozen=True)
class Endpoints:
    """Where Kafka and PostgreSQL answer, and where they came from."""

    kafka_bootstrap: str
    database_url: str
    source: str


# --- pure helpers ----------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL with its password replaced by ***, fit for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo = f"{parts.username or ''}:***"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{userinfo}@{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _port_from(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise InfrastructureError(f"{name} must be a TCP port number, got {raw!r}")
    return int(raw)


def local_kafka_bootstrap(env: Mapping[str, str]) -> str:
    """Bootstrap address of the broker that deploy/local/kafka.sh runs."""
    return f"{LOCAL_HOST}:{_port_from(env, KAFKA_PORT_ENV, DEFAULT_KAFKA_PORT)}"


def local_database_url(env: Mapping[str, str]) -> str:
    """URL of the database that deploy/local/postgres.sh provides."""
    port = _port_from(env, PG_PORT_ENV, DEFAULT_PG_PORT)
    return f"postgresql://{PG_ROLE}:{PG_PASSWORD}@{LOCAL_HOST}:{port}/{PG_DATABASE}"


def url_from_script_output(stdout: str) -> str | None:
    """The database URL that postgres.sh start prints as its last line, if it printed one."""
    for line in reversed(stdout.splitlines()):
        candidate = line.strip()
        if candidate:
            return candidate if candidate.startswith(("postgresql://", "postgres://")) else None
    return None


def combine_sources(kafka_source: str, database_source: str) -> str:
    """One word when both came from the same place, otherwise both, named."""
    if kafka_source == database_source:
        return kafka_source
    return f"kafka={kafka_source},database={database_source}"


def use_testcontainers(env: Mapping[str, str]) -> bool:
    """False when LOYALTY_USE_TESTCONTAINERS turns them off (0/false/no/off)."""
    return env.get(TESTCONTAINERS_ENV, "").strip().lower() not in FALSE_WORDS


def _setting(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


# --- probes ----------------------------------------------------------------------------------


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion on a fresh event loop in a worker thread.

    A worker thread keeps the caller's event loop (pytest-asyncio's, a service's) untouched,
    whether or not one is running.
    """
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, factory()).result()


async def _kafka_metadata(bootstrap: str, timeout_s: float) -> None:
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415 - only needed when probing

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout_s * 1000)
    )
    try:
        async with asyncio.timeout(timeout_s):
            await admin.start()
            await admin.list_topics()
    finally:
        await admin.close()


async def _database_query(url: str, timeout_s: float) -> None:
    import asyncpg  # noqa: PLC0415 - only needed when probing

    async with asyncio.timeout(timeout_s):
        connection = await asyncpg.connect(url, timeout=timeout_s)
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Silence a library logger for a while: the probe reports its failures itself."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


def kafka_problem(bootstrap: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when a Kafka broker answers a metadata request at bootstrap, else what went wrong."""
    try:
        with _quiet_logger("aiokafka"):
            run_async(lambda: _kafka_metadata(bootstrap, timeout_s))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def database_problem(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when PostgreSQL at url accepts a connection and a query, else what went wrong."""
    try:
        run_async(lambda: _database_query(url, timeout_s))
    except Exception as exc:
        message = str(exc).replace(url, redact_url(url))
        return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return None


def _ping_docker() -> bool:
    try:
        import docker  # noqa: PLC0415 - optional: a development dependency

        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def docker_available(env: Mapping[str, str] | None = None) -> bool:
    """True when a Docker engine answers a ping."""
    env = os.environ if env is None else env
    if not _setting(env, "DOCKER_HOST") and not DEFAULT_DOCKER_SOCKET.exists():
        return False
    # A failed ping leaves an unclosed socket behind in the Docker SDK; collect it quietly here
    # rather than as an unraisable ResourceWarning somewhere later.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        answered = _ping_docker()
        gc.collect()
    return answered


# --- sources ---------------------------------------------------------------------------------


def _stop_quietly(container: Any, name: str) -> None:
    try:
        container.stop()
    except Exception as exc:
        _log.warning("infrastructure.container_stop_failed", container=name, error=str(exc))


def _kafka_container(env: Mapping[str, str], stack: contextlib.ExitStack) -> str:
    from testcontainers.community.kafka import KafkaContainer  # noqa: PLC0415

    image = _setting(env, KAFKA_IMAGE_ENV) or DEFAULT_KAFKA_IMAGE
    _log.info("infrastructure.container_starting", container="kafka", image=image)
    container = (
        KafkaContainer(image)
        .with_kraft()
        .with_env("KAFKA_NUM_PARTITIONS", str(TOPIC_PARTITIONS))
        .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true")
    )
    stack.callback(_stop_quietly, container, "kafka")
    container.start(timeout=120)
    return str(container.get_bootstrap_server())


def _postgres_container(env: Mapping[str, str], stack: contextlib.ExitStack) -> str:
    from testcontainers.community.postgres import PostgresContainer  # noqa: PLC0415

    image = _setting(env, POSTGRES_IMAGE_ENV) or DEFAULT_POSTGRES_IMAGE
    _log.info("infrastructure.container_starting", container="postgres", image=image)
    container = PostgresContainer(
        image, username=PG_ROLE, password=PG_PASSWORD, dbname=PG_DATABASE, driver=None
    ).with_command(f"postgres -c max_connections={MAX_CONNECTIONS}")
    stack.callback(_stop_quietly, container, "postgres")
    container.start()
    return str(container.get_connection_url())


def _run_start_script(script: Path, env: Mapping[str, str]) -> str:
    """Run `<script> start` and return its standard output; raise with its stderr on failure."""
    bash = shutil.which("bash")
    if bash is None:
        raise InfrastructureError(f"bash is needed to run {script.relative_to(REPO_ROOT)}")
    name = str(script.relative_to(REPO_ROOT))
    child_env = {k: v for k, v in env.items() if k not in (KAFKA_ENV, DATABASE_ENV)}
    _log.info("infrastructure.local_starting", script=name)
    try:
        completed = subprocess.run(
            [bash, str(script), "start"],
            cwd=REPO_ROOT,
            env=child_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=SCRIPT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InfrastructureError(
            f"{name} start did not finish in {SCRIPT_TIMEOUT_S:.0f}s"
        ) from exc
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
        raise InfrastructureError(f"{name} start failed (exit {completed.returncode}):\n{tail}")
    return completed.stdout


def _local_kafka(env: Mapping[str, str]) -> str:
    bootstrap = local_kafka_bootstrap(env)
    if kafka_problem(bootstrap, timeout_s=5.0) is None:
        return bootstrap  # a broker already answers there
    _run_start_script(KAFKA_SCRIPT, env)
    problem = kafka_problem(bootstrap)
    if problem is not None:
        raise InfrastructureError(
            f"{KAFKA_SCRIPT.name} started but Kafka does not answer at {bootstrap}: {problem}"
        )
    return bootstrap


def _local_database(env: Mapping[str, str]) -> str:
    url = local_database_url(env)
    if database_problem(url, timeout_s=5.0) is None:
        return url  # already running and provisioned
    url = url_from_script_output(_run_start_script(POSTGRES_SCRIPT, env)) or url
    problem = database_problem(url)
    if problem is not None:
        raise InfrastructureError(
            f"{POSTGRES_SCRIPT.name} started but PostgreSQL does not answer at "
            f"{redact_url(url)}: {problem}"
        )
    return url


def _from_environment(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    kafka = _setting(env, KAFKA_ENV)
    if kafka is not None:
        problem = kafka_problem(kafka)
        if problem is not None:
            raise InfrastructureError(
                f"{KAFKA_ENV}={kafka} is set but Kafka does not answer: {problem}"
            )
    database = _setting(env, DATABASE_ENV)
    if database is not None:
        problem = database_problem(database)
        if problem is not None:
            raise InfrastructureError(
                f"{DATABASE_ENV}={redact_url(database)} is set but PostgreSQL does not answer: "
                f"{problem}"
            )
    return kafka, database


@contextlib.contextmanager
def provide_infrastructure(environ: Mapping[str, str] | None = None) -> Iterator[Endpoints]:
    """Kafka and PostgreSQL that answer, found in this order for each of them.

    1. LOYALTY_KAFKA_BOOTSTRAP_SERVERS / LOYALTY_DATABASE_URL when set (an error if set but silent);
    2. testcontainers, when a Docker engine answers (LOYALTY_USE_TESTCONTAINERS=0 skips them);
    3. deploy/local/kafka.sh and deploy/local/postgres.sh (no Docker needed).

    Containers started here are stopped on exit; servers of the local scripts keep running.
    """
    env = os.environ if environ is None else environ
    with contextlib.ExitStack() as stack:
        kafka, database = _from_environment(env)
        kafka_source = SOURCE_ENVIRONMENT
        database_source = SOURCE_ENVIRONMENT

        if (
            (kafka is None or database is None)
            and use_testcontainers(env)
            and docker_available(env)
        ):
            if kafka is None:
                kafka, kafka_source = _kafka_container(env, stack), SOURCE_TESTCONTAINERS
            if database is None:
                database, database_source = _postgres_container(env, stack), SOURCE_TESTCONTAINERS

        if kafka is None:
            kafka, kafka_source = _local_kafka(env), SOURCE_LOCAL
        if database is None:
            database, database_source = _local_database(env), SOURCE_LOCAL

        endpoints = Endpoints(
            kafka_bootstrap=kafka,
            database_url=database,
            source=combine_sources(kafka_source, database_source),
        )
        _log.info(
            "infrastructure.ready",
            kafka=endpoints.kafka_bootstrap,
            database=redact_url(endpoints.database_url),
            source=endpoints.source,
        )
        yield endpoints
