"""Every service's view of the shops: programme versions, memberships of coalitions and API
keys, from loyalty.shops.

    loyalty.shops ──► record_changes (the consumer's transaction: rows in shop_programmes,
                      shop_memberships and shop_keys, and a NOTIFY sent when it commits)
    NOTIFY ─────────► follow (every replica: reads the changed row into memory)

A consumer group gives each event to one replica only, so the replicas learn of a change from
PostgreSQL's NOTIFY, which also waits for the commit: memory never holds what the database
may still roll back. No query runs per request or per event: `caller_for`, `holders` and the
programme callbacks work from memory.

At start, each replica first reads loyalty.shops itself to the end offsets it sees then
(`catch_up`): a version published while the service was down is in memory before any input
event is applied (`attach` makes the service's handlers wait for it), as in a replay. After
that, the shops service's lead (a version starts a while after its publication) gives the
NOTIFY time to reach every replica before an event of the version's time arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from pydantic import SecretStr

from shared.api_keys import key_sha256
from shared.callers import Caller
from shared.consumer import BatchHandler, Incoming, Rejection, to_incoming
from shared.db import Connection
from shared.errors import TransientFailure
from shared.events.shops import (
    ApiKeyCreated,
    ApiKeyRevoked,
    ProgrammePublished,
    ShopCoalitionChanged,
)
from shared.holders import Holders, Membership
from shared.kafka_connection import KafkaConnection
from shared.retry import Backoff

if TYPE_CHECKING:
    from faststream.asgi.types import ASGIApp

    from shared.runtime import Runtime, ServiceDefinition

log = structlog.get_logger(__name__)

TOPIC: Final = "loyalty.shops"
# How long the listening connection stays idle before it is checked.
IDLE_CHECK_S: Final = 30.0
# How long an input batch waits, holding its connection, for the catch-up at start; after it,
# the batch is retried (a TransientFailure) rather than applied without every version.
CATCH_UP_WAIT_S: Final = 5.0
# The most one catch-up may take before it is begun again (the topic holds small records).
CATCH_UP_TIMEOUT_S: Final = 120.0
# The caller of a key configured in the service's settings: a platform operator of it.
CONFIGURED: Final = Caller(None, frozenset({"platform", "read", "redeem", "admin"}), "configured")

# Called with (shop_id, version, effective_from, toml) once per version, in version order.
ProgrammeCallback = Callable[[str, int, datetime, str], None]


@dataclass(slots=True)
class ShopDirectory:
    """The programme versions, memberships and keys of every shop, as one service knows them."""

    schema: str
    # Keys the service's settings configure (LOYALTY_ADMIN_API_KEY...): platform keys of it.
    configured_keys: tuple[SecretStr, ...] = ()
    # Who holds each shop's accounts at an event's time: the shop, or its coalition.
    holders: Holders = field(default_factory=Holders)
    _callbacks: dict[str, list[ProgrammeCallback]] = field(default_factory=dict)
    _seen: set[tuple[str, str, int]] = field(default_factory=set)
    _keys: dict[str, Caller] = field(default_factory=dict)  # sha256 -> the key's holder
    _key_hashes: dict[str, str] = field(default_factory=dict)  # key_id -> sha256
    loaded: asyncio.Event = field(default_factory=asyncio.Event)
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def channel(self) -> str:
        return f"shop_directory_{self.schema}"[:63]

    def on_programme(self, kind: str, callback: ProgrammeCallback) -> None:
        """Call `callback` for every version of `kind`: those known (at start) and new ones."""
        self._callbacks.setdefault(kind, []).append(callback)

    def caller_for(self, key: str) -> Caller | None:
        """The holder of a key, or None for a key unknown or revoked."""
        given = key.encode()
        # Every configured key is compared, in constant time, whatever the outcome.
        configured = [
            secrets.compare_digest(given, k.get_secret_value().encode())
            for k in self.configured_keys
        ]
        if any(configured):
            return CONFIGURED
        return self._keys.get(key_sha256(key))

    def attach(self, service: ServiceDefinition) -> ServiceDefinition:
        """`service` with the directory wired in: `record_changes` consumes loyalty.shops,
        `follow` starts with the service (its catch-up runs while the consumers join their
        groups), the HTTP API finds the directory in `app.state.shop_directory`, and the input
        handlers apply nothing before the catch-up."""
        handlers: dict[str, BatchHandler] = {
            topic: self._after_catch_up(handler) for topic, handler in service.handlers.items()
        }
        handlers[TOPIC] = self.record_changes
        http_api = service.http_api
        return dataclasses.replace(
            service,
            handlers=handlers,
            http_api=None if http_api is None else self._serving(http_api),
            starting=(self.follow, *service.starting),
        )

    def after_catch_up(
        self, work: Callable[[Runtime], Awaitable[None]]
    ) -> Callable[[Runtime], Awaitable[None]]:
        """Background `work` (a scheduled pass, a worker) started once the directory has read
        loyalty.shops to its end: it never acts on a shop whose versions are not in memory."""

        async def start(runtime: Runtime) -> None:
            await self.caught_up.wait()
            await work(runtime)

        return start

    def _serving(self, http_api: Callable[[Runtime], ASGIApp]) -> Callable[[Runtime], ASGIApp]:
        def api(runtime: Runtime) -> ASGIApp:
            built = http_api(runtime)
            state = getattr(built, "state", None)
            if state is not None:
                state.shop_directory = self
            return built

        return api

    def _after_catch_up(self, handler: BatchHandler) -> BatchHandler:
        async def handle(conn: Connection, batch: Sequence[Incoming]) -> Sequence[Rejection]:
            if not self.caught_up.is_set():
                try:
                    await asyncio.wait_for(self.caught_up.wait(), CATCH_UP_WAIT_S)
                except TimeoutError:
                    raise TransientFailure(
                        "the shop directory has not read loyalty.shops to its end yet"
                    ) from None
            return await handler(conn, batch)

        return handle

    def programme_known(self, row: Any) -> None:
        seen = (row["shop_id"], row["kind"], row["version"])
        if seen in self._seen:
            return
        self._seen.add(seen)
        for callback in self._callbacks.get(row["kind"], ()):
            try:
                callback(row["shop_id"], row["version"], row["effective_from"], row["toml"])
            except Exception as exc:  # noqa: BLE001 - any refusal; the other versions apply
                # The shops service validated the document: a refusal here is a version this
                # service cannot run (an older release, say). Said loudly; the other shops and
                # versions still apply, and the row stays in the table for the next start.
                # The reason, not a traceback: a catch-up may meet many refused versions, and
                # rendering a traceback for each held the event loop for about a second.
                log.error(  # noqa: TRY400 - the reason is the message; see above
                    "shop_programme_refused",
                    shop_id=row["shop_id"],
                    kind=row["kind"],
                    version=row["version"],
                    error_class=type(exc).__name__,
                    error=str(exc),
                )

    def membership_known(self, row: Any) -> None:
        self.holders.add(
            Membership(row["shop_id"], row["version"], row["coalition_id"], row["effective_from"])
        )

    def key_known(self, row: Any) -> None:
        sha256 = row["key_sha256"]
        self._key_hashes[row["key_id"]] = sha256
        if row["revoked_at"] is not None:
            self._keys.pop(sha256, None)
            return
        self._keys[sha256] = Caller(row["shop_id"], frozenset(row["scopes"]), row["prefix"])

    async def load(self, conn: Connection) -> None:
        """Everything the tables hold; what memory already knew is not told twice."""
        for row in await conn.fetch(
            f"SELECT * FROM {self.schema}.shop_programmes ORDER BY shop_id, kind, version"
        ):
            self.programme_known(row)
        for row in await conn.fetch(f"SELECT * FROM {self.schema}.shop_memberships"):
            self.membership_known(row)
        for row in await conn.fetch(f"SELECT * FROM {self.schema}.shop_keys"):
            self.key_known(row)
        self.loaded.set()

    async def reload_one(self, conn: Connection, payload: str) -> None:
        """Read the row a NOTIFY names."""
        said = json.loads(payload)
        if "key_id" in said:
            row = await conn.fetchrow(
                f"SELECT * FROM {self.schema}.shop_keys WHERE key_id = $1", said["key_id"]
            )
            if row is not None:
                self.key_known(row)
            return
        if "membership" in said:
            for row in await conn.fetch(
                f"""SELECT * FROM {self.schema}.shop_memberships
                    WHERE shop_id = $1 AND version <= $2""",
                said["shop_id"],
                said["membership"],
            ):
                self.membership_known(row)
            return
        for row in await conn.fetch(
            f"""SELECT * FROM {self.schema}.shop_programmes
                WHERE shop_id = $1 AND kind = $2 AND version <= $3 ORDER BY version""",
            said["shop_id"],
            said["kind"],
            said["version"],
        ):
            self.programme_known(row)

    def remember(self, item: Incoming | Rejection) -> None:
        """What one record of loyalty.shops says, into memory only (the catch-up)."""
        data = item.event.data if isinstance(item, Incoming) and item.event else None
        if isinstance(data, ProgrammePublished):
            self.programme_known(data.model_dump())
        elif isinstance(data, ShopCoalitionChanged):
            self.membership_known(data.model_dump())
        elif isinstance(data, ApiKeyCreated):
            self.key_known({**data.model_dump(), "revoked_at": None})
        elif isinstance(data, ApiKeyRevoked):
            self._keys.pop(self._key_hashes.get(data.key_id, ""), None)

    async def catch_up(self, kafka: KafkaConnection) -> None:
        """Read loyalty.shops from its start to the end offsets seen now, into memory."""
        partitions = await _partitions(kafka)
        consumer = AIOKafkaConsumer(
            **kafka.client_options(), group_id=None, enable_auto_commit=False
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            pending = [tp for tp in partitions if ends[tp] > 0]
            while pending:
                got = await consumer.getmany(*pending, timeout_ms=1000)
                for tp in pending:
                    for record in got.get(tp, ()):
                        self.remember(to_incoming(record))
                pending = [tp for tp in pending if await consumer.position(tp) < ends[tp]]
        finally:
            await consumer.stop()
        self.caught_up.set()
        log.info("shop_directory_caught_up", schema=self.schema, records=sum(ends.values()))

    async def follow(self, runtime: Runtime) -> None:
        """Work of a service from its start (ServiceDefinition.starting): once it is connected,
        catch up with loyalty.shops while its consumers join their groups, then listen, load
        every row and read each notified change; after a lost connection, all of it again."""
        await runtime.connected.wait()
        backoff = Backoff(base=0.5, cap=runtime.settings.retry_max_backoff_s)
        kafka = KafkaConnection.from_settings(runtime.settings)
        while not self.caught_up.is_set():
            try:
                await asyncio.wait_for(self.catch_up(kafka), CATCH_UP_TIMEOUT_S)
            except (OSError, TimeoutError, KafkaError, TransientFailure) as exc:
                delay = backoff.next_delay()
                log.warning(
                    "shop_directory_catching_up", error=type(exc).__name__, retry_in_s=delay
                )
                await asyncio.sleep(delay)
        backoff.reset()
        dsn = runtime.settings.database_url.get_secret_value()
        while True:
            try:
                await self._listen(dsn, on_loaded=backoff.reset)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                delay = backoff.next_delay()
                log.warning(
                    "shop_directory_reconnecting", error=type(exc).__name__, retry_in_s=delay
                )
                await asyncio.sleep(delay)

    async def _listen(self, dsn: str, *, on_loaded: Callable[[], None]) -> None:
        conn = await asyncpg.connect(dsn, timeout=10)
        changes: asyncio.Queue[str] = asyncio.Queue()
        try:
            # LISTEN before reading the tables: a change committed in between is not missed.
            await conn.add_listener(self.channel, lambda *args: changes.put_nowait(args[3]))
            await self.load(conn)
            on_loaded()
            while True:
                try:
                    payload = await asyncio.wait_for(changes.get(), IDLE_CHECK_S)
                except TimeoutError:
                    await conn.fetchval("SELECT 1", timeout=10)  # raises once the link is gone
                    continue
                await self.reload_one(conn, payload)
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=5)

    async def record_changes(
        self, conn: Connection, batch: Sequence[Incoming]
    ) -> Sequence[Rejection]:
        """The BatchHandler of loyalty.shops: store what the events say, in the consumer's
        transaction; every replica reads it back when the NOTIFY arrives after the commit."""
        for item in batch:
            event = item.event
            data = None if event is None else event.data
            if isinstance(data, ProgrammePublished):
                await _save_programme(conn, self.schema, data)
                said = {"shop_id": data.shop_id, "kind": data.kind, "version": data.version}
            elif isinstance(data, ShopCoalitionChanged):
                await _save_membership(conn, self.schema, data)
                said = {"shop_id": data.shop_id, "membership": data.version}
            elif isinstance(data, ApiKeyCreated):
                await _save_key(conn, self.schema, data)
                said = {"key_id": data.key_id}
            elif isinstance(data, ApiKeyRevoked):
                await conn.execute(
                    f"""UPDATE {self.schema}.shop_keys SET revoked_at = $2
                        WHERE key_id = $1 AND revoked_at IS NULL""",
                    data.key_id,
                    data.revoked_at,
                )
                said = {"key_id": data.key_id}
            else:
                continue  # shop.created: nothing a service keeps
            await conn.execute("SELECT pg_notify($1, $2)", self.channel, json.dumps(said))
        return []


async def _partitions(kafka: KafkaConnection) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        described = await admin.describe_topics([TOPIC])
    finally:
        await admin.close()
    partitions = [TopicPartition(TOPIC, p["partition"]) for t in described for p in t["partitions"]]
    if not partitions:
        raise TransientFailure(f"the topic {TOPIC} does not exist yet")
    return partitions


async def _save_programme(conn: Connection, schema: str, data: ProgrammePublished) -> None:
    await conn.execute(
        f"""INSERT INTO {schema}.shop_programmes
                (shop_id, kind, version, effective_from, toml, published_by, reason)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
        data.shop_id,
        data.kind,
        data.version,
        data.effective_from,
        data.toml,
        data.published_by,
        data.reason,
    )


async def _save_membership(conn: Connection, schema: str, data: ShopCoalitionChanged) -> None:
    await conn.execute(
        f"""INSERT INTO {schema}.shop_memberships (shop_id, version, coalition_id, effective_from)
            VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING""",
        data.shop_id,
        data.version,
        data.coalition_id,
        data.effective_from,
    )


async def _save_key(conn: Connection, schema: str, data: ApiKeyCreated) -> None:
    await conn.execute(
        f"""INSERT INTO {schema}.shop_keys
                (key_id, shop_id, prefix, key_sha256, scopes, created_at)
            VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING""",
        data.key_id,
        data.shop_id,
        data.prefix,
        data.key_sha256,
        list(data.scopes),
        data.created_at,
    )
