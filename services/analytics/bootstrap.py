"""The one place that wires the analytics service: settings, clock, handlers, HTTP API."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Final

from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp

from services.analytics.handlers import (
    record_customers,
    record_memberships,
    record_notifications,
    record_orders,
    record_points,
    record_tiers,
)
from services.analytics.http import build_api, overview_source
from services.analytics.overviews import refresh_periodically
from services.analytics.settings import AnalyticsSettings
from shared.clock import Clock, SystemClock
from shared.runtime import Runtime, ServiceDefinition, build_app
from shared.shop_directory import ShopDirectory

SCHEMA: Final = "analytics"
MIGRATIONS: Final = Path(__file__).parent / "migrations"


def definition(settings: AnalyticsSettings) -> ServiceDefinition:
    configured = settings.analytics_api_key
    # The keys of the report routes: the shops service's, and the configured platform key.
    directory = ShopDirectory(SCHEMA, configured_keys=(configured,) if configured else ())

    def http_api(runtime: Runtime) -> ASGIApp:
        return build_api(runtime, settings=settings)

    async def refresh_overviews(runtime: Runtime) -> None:
        await refresh_periodically(
            runtime,
            source=overview_source(runtime, settings),
            every_s=settings.analytics_overview_every_s,
        )

    service = ServiceDefinition(
        name="analytics",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        handlers={
            "shop.customers": partial(record_customers, schema=SCHEMA),
            "shop.orders": partial(record_orders, schema=SCHEMA),
            "loyalty.points": partial(record_points, schema=SCHEMA),
            "loyalty.tiers": partial(record_tiers, schema=SCHEMA),
            "loyalty.memberships": partial(record_memberships, schema=SCHEMA),
            "loyalty.notifications": partial(record_notifications, schema=SCHEMA),
        },
        http_api=http_api,
        # Overviews read the shops' coalitions: none is computed before the catch-up.
        background=(directory.after_catch_up(refresh_overviews),),
    )
    return directory.attach(service)


def bootstrap(
    settings: AnalyticsSettings | None = None, *, clock: Clock | None = None
) -> tuple[AsgiFastStream, Runtime]:
    settings = settings or AnalyticsSettings()
    return build_app(definition(settings), settings, clock=clock or SystemClock())
