"""The life of a service process: pool, migrations, topics, consumers, outbox relay, HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError
from fastapi import FastAPI
from faststream.asgi import AsgiFastStream, AsgiResponse, AsyncAPIRoute, get
from faststream.asgi.types import ASGIApp, Receive, Scope, Send
from faststream.kafka import KafkaBroker
from prometheus_client import make_asgi_app

from shared.asyncapi import CompletedAsyncAPI
from shared.broker import document_publishers, make_broker, subscribe_batches
from shared.clock import Clock, SystemClock
from shared.consumer import BatchConsumer, BatchHandler
from shared.db import apply_migrations, create_pool
from shared.errors import Bug, TransientFailure
from shared.kafka_connection import KafkaConnection, check_access
from shared.monitoring import Monitor, missing_codecs
from shared.outbox import OutboxRelay
from shared.problems import problem
from shared.retry import Backoff, is_transient
from shared.settings import CommonSettings
from shared.topics import ALL_TOPICS, ensure_topics, topics_with_dlq

log = structlog.get_logger(__name__)

MESSAGING_MIGRATIONS = Path(__file__).parent / "migrations"

_OPERATIONAL_METHODS = ("GET", "HEAD")

# Connections of a service's pool that its consumers' transactions never take all of.
CONNECTIONS_KEPT_FREE = 3


@dataclass(frozen=True)
class ServiceDefinition:
    """What makes one service different from the others."""

    name: str
    schema: str
    migrations: Path
    handlers: dict[str, BatchHandler]  # topic -> handler
    produces: tuple[str, ...] = ()
    # The service's own HTTP API (a FastAPI app, say), built once the runtime exists; it is
    # served for every path that the operational routes (/healthz, /metrics...) do not take.
    http_api: Callable[[Runtime], ASGIApp] | None = None
    # Long-running work of the service besides consuming (a scheduler, say): each callable is
    # started as a task once the service is up, and cancelled and awaited on shutdown.
    background: tuple[Callable[[Runtime], Awaitable[None]], ...] = ()
    # Work started with the service, before its consumers subscribe: once `Runtime.connected`
    # is set it runs while they join their groups (which takes seconds), so that what the
    # handlers wait for (the shop directory's catch-up) is ready by the first batch. Cancelled
    # and awaited on shutdown, as the background work is.
    starting: tuple[Callable[[Runtime], Awaitable[None]], ...] = ()


@dataclass
class Runtime:
    """The live parts of a service; built before start, filled in by the lifespan."""

    definition: ServiceDefinition
    settings: CommonSettings
    clock: Clock
    broker: KafkaBroker
    consumers: list[BatchConsumer] = field(default_factory=list)
    pool: asyncpg.Pool | None = None
    relay: OutboxRelay | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    # Rounds of each scheduled pass finished since start (shared/scheduled.py), by name.
    rounds: dict[str, int] = field(default_factory=dict)
    # Until the database and the broker first answered: what the start waits for, and why.
    started: bool = False
    waiting_for: str | None = None
    startup_error: str | None = None
    _migrated: bool = False
    # Set once the database is migrated and the broker answers, just before the consumers
    # subscribe.
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    def require_pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise TransientFailure("the database is not connected yet: the service is starting")
        return self.pool


async def prepare_database(
    pool: asyncpg.Pool, definition: ServiceDefinition, *, contract: bool = True
) -> list[str]:
    """Apply the shared messaging tables and the service's own migrations to its schema;
    `contract=False` holds back the contract parts (shared/db.py)."""
    async with pool.acquire() as conn:
        return await apply_migrations(
            conn,
            definition.schema,
            [("messaging", MESSAGING_MIGRATIONS), (definition.name, definition.migrations)],
            contract=contract,
        )


def consumer_group(settings: CommonSettings, service: str, topic: str) -> str:
    """One consumer group per service and topic.

    A group per service would put every topic's consumer in one group: each join or slow batch
    of one topic would then stall the others in rebalances. Replicas of a service still share
    each topic's partitions through its group.
    """
    return f"{settings.consumer_group_prefix}-{service}.{topic}"


def package_version() -> str:
    try:
        return metadata.version("loyalty-engine")
    except metadata.PackageNotFoundError:
        return "0.0.0"


def service_api(service: str, description: str) -> FastAPI:
    """The FastAPI app of a service's own routes, its OpenAPI document at /openapi.json and
    its pages at /docs; the caller installs the problem handlers its errors need."""
    return FastAPI(
        title=f"loyalty-{service}",
        version=package_version(),
        description=description,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )


def build_app(
    definition: ServiceDefinition, settings: CommonSettings, *, clock: Clock | None = None
) -> tuple[AsgiFastStream, Runtime]:
    """The ASGI application of a service and the runtime it manages; nothing starts yet."""
    broker = make_broker(settings, definition.name)
    document_publishers(broker, definition.produces)
    runtime = Runtime(definition, settings, clock or SystemClock(), broker)
    # The consumers' transactions together leave connections of the pool to the relay, the
    # HTTP API and the gauges, however many topics are behind at once.
    transactions = asyncio.Semaphore(max(1, settings.db_pool_max - CONNECTIONS_KEPT_FREE))
    for topic, handler in definition.handlers.items():
        consumer = BatchConsumer(
            service=definition.name,
            schema=definition.schema,
            topic=topic,
            handler=handler,
            clock=runtime.clock,
            max_backoff_s=settings.retry_max_backoff_s,
            parallel=settings.batch_partitions_in_parallel,
            transactions=transactions,
        )
        runtime.consumers.append(consumer)
        subscribe_batches(
            broker,
            consumer,
            group_id=consumer_group(settings, definition.name, topic),
            max_records=settings.batch_max_records,
            batch_timeout_ms=settings.batch_timeout_ms,
        )

    monitor = Monitor(runtime)

    async def on_startup() -> None:
        # Readiness gauges from the first moment, while the start may still wait for a
        # dependency; the start itself runs where the broker's would (_ServiceApp).
        monitor.start()
        for work in definition.starting:
            runtime.tasks.append(asyncio.create_task(_background(work, runtime)))

    async def after_startup() -> None:
        for work in definition.background:
            runtime.tasks.append(asyncio.create_task(_background(work, runtime)))
        log.info("service_started", service=definition.name)

    async def on_shutdown() -> None:
        for consumer in runtime.consumers:
            consumer.stopping = True
        await _stop_background(runtime)

    async def after_shutdown() -> None:
        await monitor.stop()
        if runtime.relay is not None:
            await runtime.relay.stop()
        if runtime.pool is not None:
            await runtime.pool.close()
        log.info("service_stopped", service=definition.name)

    app = _ServiceApp(
        broker,
        asgi_routes=[
            ("/healthz", _healthz),
            ("/readyz", _readyz(monitor)),
            ("/metrics", make_asgi_app()),
        ],
        on_startup=[on_startup],
        after_startup=[after_startup],
        on_shutdown=[on_shutdown],
        after_shutdown=[after_shutdown],
        # No "try it out" route: FastStream's would publish any message a visitor posts to any
        # topic through the service's own producer, with no authentication.
        asyncapi_path=AsyncAPIRoute("/docs/asyncapi", try_it_out_path=None),
        specification=CompletedAsyncAPI(
            broker,
            title=f"loyalty-{definition.name}",
            version=package_version(),
            description=f"The {definition.name} service of the loyalty engine.",
        ),
        logger=logging.getLogger("faststream"),
    )
    app.runtime = runtime
    if definition.http_api is not None:
        app.api = definition.http_api(runtime)
    return app, runtime


async def _background(work: Callable[[Runtime], Awaitable[None]], runtime: Runtime) -> None:
    try:
        await work(runtime)
    except asyncio.CancelledError:
        raise
    except Exception:
        # Nobody awaits the task until shutdown: a background task that dies must say so at once.
        log.exception("background_task_died", service=runtime.definition.name)
        raise


async def _stop_background(runtime: Runtime) -> None:
    for task in runtime.tasks:
        task.cancel()
    for task in runtime.tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, runtime.settings.graceful_timeout_s)
    runtime.tasks.clear()


class _ServiceApp(AsgiFastStream):
    """AsgiFastStream whose unmatched HTTP paths go to the service's own API, if it has one,
    and whose start waits for the database and the broker instead of failing.

    Served by uvicorn, the start runs once the lifespan has started: HTTP is served (/healthz,
    /readyz saying what the start waits for) while it keeps trying.
    """

    api: ASGIApp | None = None
    runtime: Runtime | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The operational routes are read-only: any other method is a 405 problem document
        # with Allow (RFC 9110 §15.5.6), as the service's own API answers.
        if (
            scope["type"] == "http"
            and scope["method"] not in _OPERATIONAL_METHODS
            and any(scope["path"] == path for path, _ in self.routes)
        ):
            allow = {"Allow": ", ".join(_OPERATIONAL_METHODS)}
            await problem(405, "Method Not Allowed", headers=allow)(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _start_broker(self) -> None:
        if self.runtime is None:
            raise Bug("a service app started without its runtime")
        await _start_until_up(self.runtime)

    async def not_found(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.api is not None and scope["type"] == "http":
            await self.api(scope, receive, send)
            return
        await super().not_found(scope, receive, send)


async def _start_until_up(runtime: Runtime) -> None:
    """Start the pool, migrations, topics, relay and subscribers, trying again with backoff
    for as long as the database or the broker does not answer: a dependency that comes up
    later is waited for, not left to a supervisor's restart loop. Other failures are raised."""
    if missing := missing_codecs():
        # Installed without aiokafka's codec extras: a batch in one of these codecs would stop
        # its partition, so readiness fails from the start instead of at the first such batch.
        log.error("kafka_codecs_missing", codecs=list(missing))
    backoff = Backoff(base=0.5, cap=runtime.settings.retry_max_backoff_s)
    while True:
        try:
            await _start_infrastructure(runtime)
            runtime.waiting_for = "broker"
            await runtime.broker.start()
        except Exception as exc:
            if not (is_transient(exc) or isinstance(exc, KafkaError)):
                raise
            await _undo_partial_start(runtime)
            delay = backoff.next_delay()
            runtime.startup_error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "service_start_waiting",
                waiting_for=runtime.waiting_for,
                error=runtime.startup_error,
                retry_in_s=round(delay, 1),
            )
            await asyncio.sleep(delay)
        else:
            runtime.started, runtime.waiting_for, runtime.startup_error = True, None, None
            return


async def _undo_partial_start(runtime: Runtime) -> None:
    """Stop what a failed attempt started, so that the next one begins clean."""
    with contextlib.suppress(Exception):
        await runtime.broker.stop()


async def _start_infrastructure(runtime: Runtime) -> None:
    """Each step once: an attempt after a failure takes up where the last one stopped."""
    settings, definition = runtime.settings, runtime.definition
    runtime.waiting_for = "database"
    if runtime.pool is None:
        runtime.pool = await create_pool(
            settings.database_url.get_secret_value(),
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
        )
    if not runtime._migrated:
        contract = settings.migrations == "all"
        applied = await prepare_database(runtime.pool, definition, contract=contract)
        log.info("database_ready", schema=definition.schema, migrations_applied=len(applied))
        runtime._migrated = True
    runtime.waiting_for = "broker"
    if runtime.relay is not None:
        return
    kafka = KafkaConnection.from_settings(settings)
    # A refused login or certificate is told in one line here, not as "Unable to bootstrap".
    await check_access(kafka)
    topics = topics_with_dlq(ALL_TOPICS)
    await ensure_topics(kafka, topics, partitions=settings.topic_partitions)
    relay = OutboxRelay(
        pool=runtime.pool,
        schema=definition.schema,
        kafka=kafka,
        service=definition.name,
        batch_size=settings.outbox_batch_size,
        idle_poll_s=settings.outbox_idle_poll_s,
        compression=None if settings.kafka_compression == "none" else settings.kafka_compression,
    )
    # Before the subscribers: their group joins can take seconds while the first of them
    # already consumes, and what it commits must not wait for the rest to join.
    try:
        await relay.start()
    except Exception:
        with contextlib.suppress(Exception):
            await relay.stop(timeout=settings.graceful_timeout_s)
        raise
    for consumer in runtime.consumers:
        consumer.bind(runtime.pool, relay.wake)
    runtime.relay = relay
    runtime.connected.set()


@get(include_in_schema=False)
async def _healthz(scope: Any) -> AsgiResponse:
    """Liveness: the process serves requests. Dependencies are for /readyz."""
    return AsgiResponse(b'{"status":"ok"}', 200, {"content-type": "application/json"})


def _readyz(monitor: Monitor) -> Any:
    @get(include_in_schema=False)
    async def readyz(scope: Any) -> AsgiResponse:
        """Readiness: database and broker answer, no consumer is stuck, the relay runs."""
        readiness = await monitor.readiness()
        return AsgiResponse(
            readiness.to_json(),
            200 if readiness.ready else 503,
            {"content-type": "application/json"},
        )

    return readyz
