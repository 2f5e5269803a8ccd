"""The one place that wires the console: settings, clock, accounts, pages."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Final

import structlog
from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp

from services.console.adapters.accounts import SCHEMA
from services.console.adapters.upstream import Upstream
from services.console.context import make_console, make_upstream
from services.console.dead_letter_index import keep_indexing
from services.console.http import build_api
from services.console.settings import ConsoleSettings
from shared.clock import Clock, SystemClock
from shared.runtime import Runtime, ServiceDefinition, build_app

MIGRATIONS: Final = Path(__file__).parent / "migrations"

log = structlog.get_logger(__name__)


def definition(settings: ConsoleSettings, *, upstream: Upstream | None = None) -> ServiceDefinition:
    """It consumes nothing: staff act through its pages, which read and change the other
    services through their HTTP APIs (`upstream`; tests hand in their own transports)."""
    upstream = upstream or make_upstream(settings)

    def http_api(runtime: Runtime) -> ASGIApp:
        if settings.console_api_key is None:
            # Signing in works; every panel fed by another service says it is unavailable.
            log.warning("console_api_key_missing", setting="LOYALTY_CONSOLE_API_KEY")
        return build_api(make_console(runtime, settings, upstream))

    async def close_upstream(runtime: Runtime) -> None:
        """Holds the upstream clients for the service's life; closes them when it stops."""
        try:
            await asyncio.Event().wait()
        finally:
            await upstream.aclose()

    async def index_dead_letters(runtime: Runtime) -> None:
        await keep_indexing(runtime, settings)

    return ServiceDefinition(
        name="console",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        handlers={},
        produces=("loyalty.console",),
        http_api=http_api,
        background=(close_upstream, index_dead_letters),
    )


def bootstrap(
    settings: ConsoleSettings | None = None,
    *,
    clock: Clock | None = None,
    upstream: Upstream | None = None,
) -> tuple[AsgiFastStream, Runtime]:
    settings = settings or ConsoleSettings()
    service = definition(settings, upstream=upstream)
    return build_app(service, settings, clock=clock or SystemClock())
