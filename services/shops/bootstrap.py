"""The one place that wires the shops service: settings, clock, admin API, outbox."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp

from services.shops.adapters.store import SCHEMA
from services.shops.http import build_api
from services.shops.settings import ShopsSettings
from shared.clock import Clock, SystemClock
from shared.runtime import Runtime, ServiceDefinition, build_app

MIGRATIONS: Final = Path(__file__).parent / "migrations"


def definition(settings: ShopsSettings) -> ServiceDefinition:
    """It consumes nothing: its changes come through the admin API and the CLI, and leave
    through its outbox on loyalty.shops."""

    def http_api(runtime: Runtime) -> ASGIApp:
        return build_api(runtime)

    return ServiceDefinition(
        name="shops",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        handlers={},
        produces=("loyalty.shops",),
        http_api=http_api,
    )


def bootstrap(
    settings: ShopsSettings | None = None, *, clock: Clock | None = None
) -> tuple[AsgiFastStream, Runtime]:
    settings = settings or ShopsSettings()
    return build_app(definition(settings), settings, clock=clock or SystemClock())
