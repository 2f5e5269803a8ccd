"""A database of the test session's own, created beside the given one and dropped at the end.

Rows a run leaves behind (a shifted-clock run's login throttle a year ahead, say) would meet the
next run's constant identifiers; a fresh database per session leaves nothing to meet. Several
sessions may share a server: each creates, and drops, only the database it named itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Iterator, Mapping
from typing import Final
from urllib.parse import quote, unquote, urlsplit

import asyncpg
import structlog
from infrastructure import FALSE_WORDS, PROBE_TIMEOUT_S, redact_url, run_async

FRESH_DATABASE_ENV: Final = "LOYALTY_TEST_FRESH_DATABASE"
# PostgreSQL cuts longer identifiers short (NAMEDATALEN - 1).
MAX_NAME_BYTES: Final = 63
TOKEN_BYTES: Final = 6
# FORCE cannot end an autovacuum worker of a superuser: wait for it and try again.
DROP_ATTEMPTS: Final = 20
DROP_PAUSE_S: Final = 0.5

_NOT_IN_NAME: Final = re.compile(r"[^a-z0-9_]")

_log = structlog.get_logger()


# --- pure helpers ----------------------------------------------------------------------------


def fresh_database_wanted(env: Mapping[str, str]) -> bool:
    """False when LOYALTY_TEST_FRESH_DATABASE turns it off (0/false/no/off)."""
    return env.get(FRESH_DATABASE_ENV, "").strip().lower() not in FALSE_WORDS


def database_of(url: str) -> str:
    """The database a URL names; PostgreSQL's default, the role's name, when it names none."""
    parts = urlsplit(url)
    return unquote(parts.path.lstrip("/")) or unquote(parts.username or "") or "postgres"


def session_database_name(base: str, token: str) -> str:
    """`<base>_t<token>`: lower-case letters, digits and underscores, at most 63 bytes, the
    token kept whole so that two sessions never share a name."""
    suffix = f"_t{token}"
    stem = _NOT_IN_NAME.sub("_", base.lower())
    if not stem[:1].isalpha():
        stem = f"db{stem}"  # an identifier begins with a letter
    return stem[: MAX_NAME_BYTES - len(suffix)] + suffix


def with_database(url: str, name: str) -> str:
    """The URL naming another database; user, password, host, port and query kept as given.

    Built by hand: urlunsplit drops the `//` of an empty host (`postgresql:///db?host=/run`).
    """
    parts = urlsplit(url)
    rebuilt = f"{parts.scheme}://{parts.netloc}/{quote(name, safe='')}"
    if parts.query:
        rebuilt += f"?{parts.query}"
    if parts.fragment:
        rebuilt += f"#{parts.fragment}"
    return rebuilt


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- the database ----------------------------------------------------------------------------


async def _create(url: str, name: str) -> None:
    async with asyncio.timeout(PROBE_TIMEOUT_S * 3):
        admin = await asyncpg.connect(url, timeout=PROBE_TIMEOUT_S)
        try:
            # Owned by the URL's role, which may then create the schemas and the (trusted)
            # extensions that the migrations ask for.
            await admin.execute(f"CREATE DATABASE {_quoted(name)}")
        finally:
            await admin.close()


async def _drop(url: str, name: str) -> None:
    admin = await asyncpg.connect(url, timeout=PROBE_TIMEOUT_S)
    try:
        for attempt in range(1, DROP_ATTEMPTS + 1):
            try:
                await admin.execute(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
            except (asyncpg.InsufficientPrivilegeError, asyncpg.ObjectInUseError):
                if attempt == DROP_ATTEMPTS:
                    raise
                await asyncio.sleep(DROP_PAUSE_S)
            else:
                return
    finally:
        await admin.close()


@contextlib.contextmanager
def session_database(url: str, env: Mapping[str, str]) -> Iterator[str]:
    """The URL of a new, empty database on url's server, dropped on exit.

    The given URL itself when LOYALTY_TEST_FRESH_DATABASE turns this off (to look at the rows
    after a run), or when its role may not create databases (a warning says so).
    """
    if not fresh_database_wanted(env):
        _log.info("infrastructure.session_database_given", database=redact_url(url))
        yield url
        return
    name = session_database_name(database_of(url), secrets.token_hex(TOKEN_BYTES))
    try:
        run_async(lambda: _create(url, name))
    except asyncpg.InsufficientPrivilegeError:
        _log.warning(
            "infrastructure.session_database_refused",
            reason="the role may not create databases: the tests use the given one",
            database=redact_url(url),
        )
        yield url
        return
    fresh = with_database(url, name)
    _log.info("infrastructure.session_database_created", database=redact_url(fresh))
    try:
        yield fresh
    finally:
        run_async(lambda: _drop(url, name))
        _log.info("infrastructure.session_database_dropped", database=name)
