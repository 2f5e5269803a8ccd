"""Services of the engine as processes for the benchmark: quiet logs kept in .local/bench-logs."""

from __future__ import annotations

from pathlib import Path

from services.processes import ServiceProcess

LOGS = Path(__file__).resolve().parent.parent / ".local" / "bench-logs"


def bench_service(service: str, env: dict[str, str]) -> ServiceProcess:
    quiet = {"LOYALTY_LOG_FORMAT": "json", "LOYALTY_LOG_LEVEL": "warning"}
    return ServiceProcess(service, env={**env, **quiet}, log_dir=LOGS)
