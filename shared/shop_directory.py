"""Every service's view of the shops: programme versions and API keys, from loyalty.shops.

    loyalty.shops ──► record_changes (the consumer's transaction: rows in shop_programmes and
                      shop_keys, and a NOTIFY sent when it commits)
    NOTIFY ─────────► follow (every replica: reads the changed row into memory)

A consumer group gives each event to one replica only, so the replicas learn of a change from
PostgreSQL's NOTIFY, which also waits for the commit: memory never holds what the database
may still roll back. No query runs per request or per event: `caller_for` and the programme
callbacks work from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import structlog
from pydantic import SecretStr

from shared.api_keys import key_sha256
from shared.callers import Caller
from shared.consumer import Incoming, Rejection
from shared.db import Connection
from shared.events.shops import ApiKeyCreated, ApiKeyRevoked, ProgrammePublished
from shared.retry import Backoff

if TYPE_CHECKING:
    from shared.runtime import Runtime

log = structlog.get_logger(__name__)

TOPIC: Final = "loyalty.shops"
# How long the listening connection stays idle before it is checked.
IDLE_CHECK_S: Final = 30.0
# The caller of a key configured in the service's settings: a platform operator of it.
CONFIGURED: Final = Caller(None, frozenset({"platform", "read", "redeem", "admin"}), "configured")

# Called with (shop_id, version, effective_from, toml) once per version, in version order.
ProgrammeCallback = Callable[[str, int, datetime, str], None]


@dataclass(slots=True)
class ShopDirectory:
    """The programme versions and keys of every shop, as one service knows them."""

    schema: str
    # Keys the service's settings configure (LOYALTY_ADMIN_API_KEY...): platform keys of it.
    configured_keys: tuple[SecretStr, ...] = ()
    _callbacks: dict[str, list[ProgrammeCallback]] = field(default_factory=dict)
    _seen: set[tuple[str, str, int]] = field(default_factory=set)
    _keys: dict[str, Caller] = field(default_factory=dict)  # sha256 -> the key's holder
    _key_hashes: dict[str, str] = field(default_factory=dict)  # key_id -> sha256
    loaded: asyncio.Event = field(default_factory=asyncio.Event)

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

    def programme_known(self, row: Any) -> None:
        seen = (row["shop_id"], row["kind"], row["version"])
        if seen in self._seen:
            return
        self._seen.add(seen)
        for callback in self._callbacks.get(row["kind"], ()):
            try:
                callback(row["shop_id"], row["version"], row["effective_from"], row["toml"])
            except Exception:
                # The shops service validated the document: a refusal here is a version this
                # service cannot run (an older release, say). Said loudly; the other shops and
                # versions still apply, and the row stays in the table for the next start.
                log.exception(
                    "shop_programme_refused",
                    shop_id=row["shop_id"],
                    kind=row["kind"],
                    version=row["version"],
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
        for row in await conn.fetch(
            f"""SELECT * FROM {self.schema}.shop_programmes
                WHERE shop_id = $1 AND kind = $2 AND version <= $3 ORDER BY version""",
            said["shop_id"],
            said["kind"],
            said["version"],
        ):
            self.programme_known(row)

    async def follow(self, runtime: Runtime) -> None:
        """Background work of a service (ServiceDefinition.background): listen, load every
        row, then read each notified change; after a lost connection, all of it again."""
        backoff = Backoff(base=0.5, cap=runtime.settings.retry_max_backoff_s)
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
