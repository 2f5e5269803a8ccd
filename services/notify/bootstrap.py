"""The one place that wires the notify service: settings, clock, handlers, worker, HTTP API."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import asyncpg
import structlog
from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp
from pydantic import SecretStr

from services.notify import handlers, staff_mail
from services.notify.adapters.channel import Channel
from services.notify.adapters.email import SmtpChannel
from services.notify.adapters.projections import SCHEMA
from services.notify.adapters.push import WebPushChannel
from services.notify.delivery import Deliverer
from services.notify.domain.messages import TEMPLATES
from services.notify.http import build_api
from services.notify.rendering import Renderer
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings
from services.notify.staff_mail import STAFF_TEMPLATES, StaffMailer
from services.notify.worker import Worker
from shared.clock import Clock, SystemClock
from shared.db import create_pool
from shared.holders import Holders
from shared.journal import journal_handler
from shared.runtime import Runtime, ServiceDefinition, build_app
from shared.shop_directory import ShopDirectory

__all__ = [
    "SCHEMA",
    "bootstrap",
    "definition",
    "make_shop_directory",
    "make_shop_messages",
    "make_worker",
    "warn_about_links",
]

log = structlog.get_logger(__name__)


def make_renderer(settings: NotifySettings) -> Renderer:
    renderer = Renderer(
        max_bytes=settings.template_max_bytes,
        default_locale=settings.default_locale,
        default_currency=settings.default_currency,
    )
    missing = renderer.missing((*TEMPLATES, *STAFF_TEMPLATES))
    if missing:
        raise ValueError(f"notify templates are missing: {', '.join(missing)}")
    return renderer


def make_shop_messages(settings: NotifySettings) -> ShopMessageSettings:
    """Every shop's messaging settings, the environment's for shops not told otherwise."""
    return ShopMessageSettings.from_settings(settings, make_renderer(settings))


def make_shop_directory(
    shops: ShopMessageSettings, configured_key: SecretStr | None = None
) -> ShopDirectory:
    """Notify's view of loyalty.shops: each published "messages" version feeds `shops`, its
    keys open the customers' routes (`configured_key` too, as a platform key). A version
    notify refuses is logged by the directory and changes nothing else."""
    directory = ShopDirectory(
        SCHEMA, configured_keys=() if configured_key is None else (configured_key,)
    )
    directory.on_programme("messages", shops.add_version)
    return directory


def warn_about_links(settings: NotifySettings) -> None:
    """RFC 8058 asks for an https URI in List-Unsubscribe; mail providers ignore one-click
    unsubscribe over http. The default (a local address) is http, so say it at start-up."""
    if not settings.public_base_url.startswith("https://"):
        log.warning(
            "unsubscribe_url_not_https",
            public_base_url=settings.public_base_url,
            setting="LOYALTY_PUBLIC_BASE_URL",
        )


def make_channels(settings: NotifySettings, clock: Clock) -> dict[str, Channel]:
    """Email always; Web Push when a VAPID key is configured."""
    channels: dict[str, Channel] = {"email": SmtpChannel(settings, clock)}
    if settings.vapid_private_key is not None:
        channels["push"] = WebPushChannel(settings, clock)
    return channels


def make_worker(
    pool: asyncpg.Pool,
    settings: NotifySettings,
    clock: Clock,
    on_commit: Callable[[], None] = lambda: None,
    shops: ShopMessageSettings | None = None,
    *,
    holders: Holders | None = None,
) -> Worker:
    """The delivery worker; `holders` (the shop directory's) gives the account whose balance and
    tier a message shows; without it every shop holds its own."""
    deliverer = Deliverer(
        settings=settings,
        shops=shops or make_shop_messages(settings),
        channels=make_channels(settings, clock),
        secret=settings.require_secrets(),
        on_commit=on_commit,
        holders=holders or Holders(),
    )
    staff = StaffMailer(settings, deliverer.shops, deliverer.channels["email"])
    return Worker(pool=pool, clock=clock, deliverer=deliverer, staff=staff)


def definition(
    settings: NotifySettings,
    clock: Clock | None = None,
    shops: ShopMessageSettings | None = None,
) -> ServiceDefinition:
    """The notify service; `shops` holds each shop's messaging settings, which the consumer of
    `loyalty.shops` fills (a new book over the environment's settings when not given)."""
    clock = clock or SystemClock()
    shop_messages = shops or make_shop_messages(settings)
    directory = make_shop_directory(shop_messages, settings.notify_api_key)

    async def deliver(runtime: Runtime) -> None:
        # Connections of its own: a busy schedule never makes the consumers wait for one.
        pool = await create_pool(
            settings.database_url.get_secret_value(),
            min_size=1,
            max_size=settings.worker_concurrency + 1,
        )
        relay = runtime.relay
        worker = make_worker(
            pool,
            settings,
            runtime.clock,
            relay.wake if relay is not None else lambda: None,
            shop_messages,
            holders=directory.holders,
        )
        try:
            await worker.run_forever()
        finally:
            await pool.close()

    def api(runtime: Runtime) -> ASGIApp:
        return build_api(runtime, settings, shop_messages)

    service = ServiceDefinition(
        name="notify",
        schema=SCHEMA,
        migrations=Path(__file__).parent / "migrations",
        handlers={
            "shop.customers": partial(handlers.on_customers, clock=clock),
            "shop.orders": partial(handlers.on_orders, clock=clock),
            "shop.carts": partial(handlers.on_carts, clock=clock, settings=settings),
            "shop.engagement": journal_handler(SCHEMA),
            "loyalty.points": partial(handlers.on_points, clock=clock),
            "loyalty.tiers": partial(handlers.on_tiers, clock=clock),
            "loyalty.console": partial(staff_mail.on_console, clock=clock, settings=settings),
        },
        produces=("loyalty.notifications",),
        http_api=api,
        # Nothing is sent before every shop's published settings are known: the worker, like
        # the handlers (attach), waits for the catch-up.
        background=(directory.after_catch_up(deliver),) if settings.worker_enabled else (),
    )
    return directory.attach(service)


def bootstrap(
    settings: NotifySettings | None = None,
    *,
    clock: Clock | None = None,
    shops: ShopMessageSettings | None = None,
) -> tuple[AsgiFastStream, Runtime]:
    """The notify application; it refuses to start, with a clear error, when it could not send."""
    settings = settings or NotifySettings()
    clock = clock or SystemClock()
    app, runtime = build_app(definition(settings, clock, shops), settings, clock=clock)

    async def check_sending_settings() -> None:
        settings.require_secrets()
        warn_about_links(settings)
        make_renderer(settings)
        for channel in make_channels(settings, clock).values():  # a VAPID key that loads
            await channel.close()

    app.on_startup(check_sending_settings)
    return app, runtime
