"""The one place that wires the console: settings, clock, accounts, pages."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import structlog
from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp

from services.console.adapters.accounts import SCHEMA
from services.console.context import make_console
from services.console.http import build_api
from services.console.settings import ConsoleSettings
from shared.clock import Clock, SystemClock
from shared.runtime import Runtime, ServiceDefinition, build_app

MIGRATIONS: Final = Path(__file__).parent / "migrations"

log = structlog.get_logger(__name__)


def definition(settings: ConsoleSettings) -> ServiceDefinition:
    """It consumes nothing: staff act through its pages, which read and change the other
    services through their HTTP APIs."""

    def http_api(runtime: Runtime) -> ASGIApp:
        if settings.console_api_key is None:
            # Signing in works; every panel fed by another service says it is unavailable.
            log.warning("console_api_key_missing", setting="LOYALTY_CONSOLE_API_KEY")
        return build_api(make_console(runtime, settings))

    return ServiceDefinition(
        name="console",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        handlers={},
        http_api=http_api,
    )


def bootstrap(
    settings: ConsoleSettings | None = None, *, clock: Clock | None = None
) -> tuple[AsgiFastStream, Runtime]:
    settings = settings or ConsoleSettings()
    return build_app(definition(settings), settings, clock=clock or SystemClock())
