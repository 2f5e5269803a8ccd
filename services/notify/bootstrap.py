"""The one place that wires the notify service: settings, clock, handlers, runtime."""

from __future__ import annotations

from pathlib import Path

from faststream.asgi import AsgiFastStream

from services.notify.settings import NotifySettings
from shared.clock import Clock
from shared.journal import journal_handler
from shared.runtime import Runtime, ServiceDefinition, build_app

SCHEMA = "notify"
CONSUMES = (
    "shop.customers",
    "shop.orders",
    "shop.carts",
    "shop.engagement",
    "loyalty.points",
    "loyalty.tiers",
)


def definition(settings: NotifySettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="notify",
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        handlers={topic: journal_handler(SCHEMA) for topic in CONSUMES},
        produces=("loyalty.notifications",),
    )


def bootstrap(
    settings: NotifySettings | None = None, *, clock: Clock | None = None
) -> tuple[AsgiFastStream, Runtime]:
    settings = settings or NotifySettings()
    return build_app(definition(settings), settings, clock=clock)
