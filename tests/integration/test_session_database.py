"""A test session's own database: created empty and owned by the URL's role, dropped at the end
without touching another session's, and given up with a warning when the role may not create one.

On a PostgreSQL server of this module's own, where roles with and without CREATEDB can be made.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from infrastructure import run_async
from private_postgres import PrivatePostgres
from session_database import database_of, session_database, with_database

PSQL = shutil.which("psql") or "psql"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The URL of a superuser's connection to a private server with two more roles: `maker`
    may create databases, `plain` may not; each owns a database of its name."""
    database = PrivatePostgres().start()
    try:
        for statement in (
            "CREATE ROLE maker LOGIN CREATEDB",
            "CREATE ROLE plain LOGIN",
            "CREATE DATABASE maker OWNER maker",
            "CREATE DATABASE plain OWNER plain",
        ):
            run(database.url, statement)
        yield database.url
    finally:
        database.remove()


def run(url: str, statement: str, *args: Any) -> list[asyncpg.Record]:
    async def query() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return list(await connection.fetch(statement, *args))
        finally:
            await connection.close()

    return run_async(query)


def as_role(server: str, role: str) -> str:
    return with_database(server.replace("loyalty@", f"{role}@", 1), role)


def databases(server: str) -> set[str]:
    rows = run(server, "SELECT datname FROM pg_database WHERE datname LIKE 'maker_t%'")
    return {row["datname"] for row in rows}


def test_each_session_gets_an_empty_database_it_owns_and_drops_only_its_own(server: str) -> None:
    given = as_role(server, "maker")
    run(given, "CREATE TABLE IF NOT EXISTS left_behind (id int)")
    with session_database(given, {}) as first, session_database(given, {}) as second:
        names = {database_of(first), database_of(second)}
        assert len(names) == 2
        assert databases(server) == names
        owners = run(
            server,
            "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = ANY($1)",
            list(names),
        )
        assert [row["owner"] for row in owners] == ["maker", "maker"]
        # Empty of the given database's tables, and the owner may add a trusted extension,
        # as the notify migrations do.
        assert run(first, "SELECT to_regclass('left_behind') AS found")[0]["found"] is None
        run(first, "CREATE EXTENSION IF NOT EXISTS pg_trgm")
        run(first, "CREATE TABLE mine (id int)")
        assert run(second, "SELECT to_regclass('mine') AS found")[0]["found"] is None
        with session_database(given, {}) as third:
            pass
        assert databases(server) == names  # the third dropped only its own
    assert database_of(third) not in names
    assert databases(server) == set()
    assert run(given, "SELECT to_regclass('left_behind') AS found")[0]["found"] is not None


def test_the_database_is_dropped_though_a_connection_to_it_is_still_open(server: str) -> None:
    with session_database(as_role(server, "maker"), {}) as fresh:
        # A service process the session started and did not stop, in the middle of a query.
        lingering = subprocess.Popen(
            [PSQL, fresh, "-c", "SELECT pg_sleep(60)"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        until = time.monotonic() + 30
        while not run(
            server,
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%pg_sleep(60)%'"
            " AND pid <> pg_backend_pid()",
        ):
            assert time.monotonic() < until, "psql never connected"
            time.sleep(0.1)
    assert databases(server) == set()
    _, said = lingering.communicate(timeout=30)
    assert lingering.returncode != 0
    assert "terminat" in said


def test_a_role_that_may_not_create_databases_keeps_the_given_one(server: str) -> None:
    given = as_role(server, "plain")
    with session_database(given, {}) as url:
        assert url == given
    assert (
        run(server, "SELECT count(*) AS n FROM pg_database WHERE datname LIKE 'plain_t%'")[0]["n"]
        == 0
    )


def test_turned_off_the_given_database_is_used_and_nothing_created(server: str) -> None:
    given = as_role(server, "maker")
    with session_database(given, {"LOYALTY_TEST_FRESH_DATABASE": "0"}) as url:
        assert url == given
        assert databases(server) == set()
