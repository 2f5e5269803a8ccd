"""The one place that wires the tiering service: settings, clock, handlers, runtime."""

from __future__ import annotations

from pathlib import Path

from faststream.asgi import AsgiFastStream

from services.tiering.settings import TieringSettings
from shared.clock import Clock
from shared.journal import journal_handler
from shared.runtime import Runtime, ServiceDefinition, build_app

SCHEMA = "tiering"
CONSUMES = ("shop.orders", "loyalty.points")


def definition(settings: TieringSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="tiering",
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        handlers={topic: journal_handler(SCHEMA) for topic in CONSUMES},
        produces=("loyalty.tiers",),
    )


def bootstrap(
    settings: TieringSettings | None = None, *, clock: Clock | None = None
) -> tuple[AsgiFastStream, Runtime]:
    settings = settings or TieringSettings()
    return build_app(definition(settings), settings, clock=clock)
