"""The benchmark's own broker and database, so that a run never touches development data."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.settings import CommonSettings

REPO = Path(__file__).resolve().parent.parent
STATE = REPO / ".local" / "bench-kafka"
KAFKA_PORT = 19092
CONTROLLER_PORT = 19093
DATABASE = "loyalty_bench"


@dataclass(frozen=True)
class BenchInfra:
    kafka: str
    database_url: str


def _kafka_env() -> dict[str, str]:
    return {
        **os.environ,
        "LOYALTY_KAFKA_STATE_DIR": str(STATE),
        "LOYALTY_KAFKA_PORT": str(KAFKA_PORT),
        "LOYALTY_KAFKA_CONTROLLER_PORT": str(CONTROLLER_PORT),
    }


def fresh_broker() -> str:
    """A broker with empty storage on its own ports (the jars are kept between runs)."""
    script = REPO / "deploy" / "local" / "kafka.sh"
    subprocess.run(["bash", str(script), "stop"], env=_kafka_env(), check=True)  # noqa: S603, S607
    shutil.rmtree(STATE / "data", ignore_errors=True)
    subprocess.run(["bash", str(script), "start"], env=_kafka_env(), check=True)  # noqa: S603, S607
    return f"127.0.0.1:{KAFKA_PORT}"


async def _drop(conn: asyncpg.Connection, name: str) -> None:
    """Drop the database, waiting out an autovacuum worker on it: a role that is not a
    superuser may not terminate one, and it finishes within seconds."""
    for _ in range(60):
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except asyncpg.InsufficientPrivilegeError:
            await asyncio.sleep(1)
        else:
            return
    await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _cpu_ticks(stat_text: str) -> tuple[str, int]:
    """The command name and the CPU ticks (user and system, every thread) of a /proc stat."""
    name, _, rest = stat_text.partition(" (")[2].rpartition(")")
    fields = rest.split()
    return name, int(fields[11]) + int(fields[12])


def database_cpu_seconds() -> float:
    """CPU time (user and system) used so far by the local PostgreSQL server's processes that
    are alive now. The benchmark's connections stay open through a run, so the difference over
    a run is the database's work for it (a connection that closed meanwhile is not counted)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, ticks = _cpu_ticks(stat.read_text())
        except OSError:  # the process ended while we looked
            continue
        if name == "postgres":
            total += ticks
    return total / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int | str) -> float:
    """CPU time (user and system) used so far by a local process, every thread of it."""
    _, ticks = _cpu_ticks(Path(f"/proc/{pid}/stat").read_text())
    return ticks / os.sysconf("SC_CLK_TCK")


def broker_cpu_seconds() -> float:
    """CPU time (user and system) used so far by the benchmark's broker, every thread of it."""
    return process_cpu_seconds((STATE / "kafka.pid").read_text().strip())


def stop_broker() -> None:
    script = REPO / "deploy" / "local" / "kafka.sh"
    subprocess.run(["bash", str(script), "stop"], env=_kafka_env(), check=True)  # noqa: S603, S607


async def fresh_database(name: str = DATABASE) -> str:
    """Drop and create a benchmark database (`name`) on the local server; returns its URL."""
    admin_url = CommonSettings().database_url.get_secret_value()
    conn = await asyncpg.connect(admin_url)
    try:
        await _drop(conn, name)
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"
