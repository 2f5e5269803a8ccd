"""Services of the engine as processes for the benchmark: quiet logs kept in .local/bench-logs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from services.processes import ServiceProcess

LOGS = Path(__file__).resolve().parent.parent / ".local" / "bench-logs"


def bench_service(
    service: str, env: dict[str, str], *, checkout: Path | None = None
) -> ServiceProcess:
    """The service of this checkout, or of `checkout` (bench.compare's baseline)."""
    quiet = {"LOYALTY_LOG_FORMAT": "json", "LOYALTY_LOG_LEVEL": "warning"}
    return ServiceProcess(service, env={**env, **quiet}, log_dir=LOGS, checkout=checkout)


def service_env(kafka: str, database: str, group: str, batch: int) -> dict[str, str]:
    return {
        "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "LOYALTY_DATABASE_URL": database,
        "LOYALTY_CONSUMER_GROUP_PREFIX": group,
        "LOYALTY_BATCH_MAX_RECORDS": str(batch),
    }


async def launch_replicas(
    service: str, env: dict[str, str], replicas: int, *, checkout: Path | None = None
) -> list[ServiceProcess]:
    """Start `replicas` processes at once (each consumes as soon as it can) and wait until all
    are ready."""
    services = [bench_service(service, env, checkout=checkout).launch() for _ in range(replicas)]
    try:
        for process in services:
            await asyncio.to_thread(wait_ready, process)
    except BaseException:
        for process in services:
            process.stop()
        raise
    return services


def wait_ready(service: ServiceProcess, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not service.ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{service.service} not ready in {timeout}s")
        time.sleep(0.2)
