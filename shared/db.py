"""The asyncpg pool and the per-service migration runner."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from shared.errors import Bug

log = structlog.get_logger(__name__)

# What a handler is given: a plain connection, or one lent by the pool.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# How long a batch or a relay pass waits for a pooled connection before it counts as a
# transient failure (retried with backoff) rather than waiting silently for the database.
ACQUIRE_TIMEOUT_S = 10.0

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# A line of its own that splits a migration into what the previous release's code still works
# with (the expand part, above) and what only the new code does (the contract part, below).
CONTRACT_MARKER = "-- contract"
CONTRACT_SUFFIX = ":contract"
_SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose connections fail fast instead of hanging on a dead server."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=30,
        timeout=10,
        max_inactive_connection_lifetime=60,
    )
    if pool is None:  # asyncpg types it as optional; it is never None once awaited
        raise Bug("asyncpg.create_pool returned None")
    return pool


@dataclass(frozen=True)
class Migration:
    """One numbered SQL file of a service's schema.

    A file may hold a line `-- contract`: what comes before it (`expand`) is applied first, and
    what comes after (`contract`) may be held back while replicas of the previous release still
    run (`apply_migrations(..., contract=False)`); docs/operations.md, "Rolling upgrades".
    """

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def expand(self) -> str:
        return self._parts()[0]

    @property
    def contract(self) -> str | None:
        return self._parts()[1]

    def _parts(self) -> tuple[str, str | None]:
        lines = self.sql.splitlines(keepends=True)
        for n, line in enumerate(lines):
            if line.strip() == CONTRACT_MARKER:
                return "".join(lines[:n]), "".join(lines[n + 1 :])
        return self.sql, None


def load_migrations(directory: Path) -> list[Migration]:
    """Numbered files NNNN_name.sql, in order; gaps and duplicates are refused."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if match is None:
            raise Bug(f"migration file {path.name} is not named NNNN_snake_case.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise Bug(f"migrations in {directory} must be numbered 1..n without gaps: {versions}")
    return found


async def apply_migrations(
    conn: Connection,
    schema: str,
    components: list[tuple[str, Path]],
    *,
    contract: bool = True,
) -> list[str]:
    """Apply, per component, the migrations not applied yet, each in its own transaction.

    A service's schema is built from components: the shared messaging tables (inbox, outbox)
    and the service's own tables. An advisory lock serialises replicas that start at the same
    moment; a file changed after it was applied is refused, because the database no longer
    matches what the code reads. With `contract=False` the contract parts wait (they are
    recorded as the component `<name>:contract`), and a later call applies them. Returns the
    names applied now.
    """
    if not _SCHEMA_NAME.match(schema):
        raise Bug(f"bad schema name {schema!r}")
    lock_key = int.from_bytes(
        hashlib.sha256(f"migrate:{schema}".encode()).digest()[:8], "big", signed=True
    )
    await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"""CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                    component text NOT NULL,
                    version integer NOT NULL,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (component, version))"""
        )
        rows = await conn.fetch(
            f"SELECT component, version, checksum FROM {schema}.schema_migrations"
        )
        applied = {(row["component"], row["version"]): row["checksum"] for row in rows}
        done = []
        for component, directory in components:
            for migration in load_migrations(directory):
                for recorded_as, sql in _pending_parts(
                    schema, component, migration, applied, contract=contract
                ):
                    await _apply_one(conn, schema, recorded_as, migration, sql)
                    label = " (contract)" if recorded_as.endswith(CONTRACT_SUFFIX) else ""
                    done.append(f"{component}/{migration.name}{label}")
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)


def _pending_parts(
    schema: str,
    component: str,
    migration: Migration,
    applied: dict[tuple[str, int], str],
    *,
    contract: bool,
) -> list[tuple[str, str]]:
    """The parts of `migration` still to apply, each with the component it is recorded as."""
    parts = [(component, migration.expand)]
    if migration.contract is not None and contract:
        parts.append((component + CONTRACT_SUFFIX, migration.contract))
    pending = []
    for recorded_as, sql in parts:
        checksum = applied.get((recorded_as, migration.version))
        if checksum is None:
            pending.append((recorded_as, sql))
        elif checksum != migration.checksum:
            raise Bug(f"{schema}/{component}/{migration.name} changed after it was applied")
    return pending


async def _apply_one(
    conn: Connection, schema: str, component: str, migration: Migration, sql: str
) -> None:
    async with conn.transaction():
        await conn.execute(f"SET LOCAL search_path TO {schema}, public")
        await conn.execute(sql)
        await conn.execute(
            f"INSERT INTO {schema}.schema_migrations (component, version, name, checksum) "
            "VALUES ($1, $2, $3, $4)",
            component,
            migration.version,
            migration.name,
            migration.checksum,
        )
    log.info("migration_applied", schema=schema, component=component, migration=migration.name)
