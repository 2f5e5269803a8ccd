"""The one place that wires the earn service: settings, clock, handlers, runtime."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from faststream.asgi import AsgiFastStream

from services.earn.adapters.ledger import SCHEMA
from services.earn.handlers import award_points, record_tier_changes
from services.earn.settings import EarnSettings
from shared.clock import Clock
from shared.runtime import Runtime, ServiceDefinition, build_app


def definition(settings: EarnSettings) -> ServiceDefinition:
    return ServiceDefinition(
        name="earn",
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        handlers={
            "shop.orders": partial(award_points, rates=settings.earn_rates),
            "loyalty.tiers": record_tier_changes,
        },
        produces=("loyalty.points",),
    )


def bootstrap(
    settings: EarnSettings | None = None, *, clock: Clock | None = None
) -> tuple[AsgiFastStream, Runtime]:
    settings = settings or EarnSettings()
    return build_app(definition(settings), settings, clock=clock)
