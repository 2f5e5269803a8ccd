"""The one place that wires the tiering service: settings, programme, clock, handlers, runtime."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Final

from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp
from pydantic import SecretStr

from services.tiering.domain.rules import Basis, Programme
from services.tiering.evaluation import evaluate_periodically
from services.tiering.handlers import apply_activity, apply_memberships
from services.tiering.http import build_api
from services.tiering.programme import load_programme, programme_from_toml
from services.tiering.settings import TieringSettings
from services.tiering.shops import TierProgrammes
from shared.clock import Clock, SystemClock
from shared.runtime import Runtime, ServiceDefinition, build_app
from shared.shop_directory import ShopDirectory

SCHEMA: Final = "tiering"
MIGRATIONS: Final = Path(__file__).parent / "migrations"
MEMBERSHIPS: Final = "loyalty.memberships"
BASIS_TOPICS: Final = {Basis.SPEND: "shop.orders", Basis.POINTS: "loyalty.points"}


def basis_topic(programme: Programme) -> str:
    """The topic whose events move the qualifying totals."""
    return BASIS_TOPICS[programme.basis]


def shop_directory(
    programmes: TierProgrammes, *, configured_key: SecretStr | None = None
) -> ShopDirectory:
    """The directory of tiering's schema: each published tier programme version becomes a
    version of `programmes` (a document this release refuses is logged by the directory and
    skipped); `configured_key` opens every shop as a platform key."""
    directory = ShopDirectory(
        SCHEMA, configured_keys=() if configured_key is None else (configured_key,)
    )

    def add_version(shop_id: str, version: int, effective_from: datetime, toml: str) -> None:
        source = f"shop {shop_id} tiers version {version}"
        programmes.add_version(shop_id, effective_from, programme_from_toml(toml, source=source))

    directory.on_programme("tiers", add_version)
    return directory


def definition(
    settings: TieringSettings,
    *,
    clock: Clock | None = None,
    programme: Programme | None = None,
    programmes: TierProgrammes | None = None,
) -> ServiceDefinition:
    """Raises ProgrammeError, naming the setting, when the programme file is not valid.

    `programmes`: the shops' versions known at start; without it, the shop `default` alone,
    under `programme` (or the programme file). The versions published on loyalty.shops are
    added to it as they arrive. Both basis topics are read, as each shop's programme says
    which of them counts for it.
    """
    if programmes is None:
        programmes = TierProgrammes(programme or load_programme(settings.tiering_programme))
    clock = clock or SystemClock()
    directory = shop_directory(programmes, configured_key=settings.tiering_admin_api_key)

    def http_api(runtime: Runtime) -> ASGIApp:
        return build_api(runtime, programmes=programmes, directory=directory)

    activity = partial(
        apply_activity,
        programmes=programmes,
        schema=SCHEMA,
        clock=clock,
        ahead_max=timedelta(seconds=settings.event_ahead_max_s),
        holders=directory.holders,
    )
    service = ServiceDefinition(
        name="tiering",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        handlers={
            **dict.fromkeys(BASIS_TOPICS.values(), activity),
            MEMBERSHIPS: partial(
                apply_memberships,
                programmes=programmes,
                schema=SCHEMA,
                clock=clock,
                holders=directory.holders,
            ),
        },
        produces=("loyalty.tiers",),
        http_api=http_api,
        background=(
            # The scheduled evaluation, like the handlers (attach), waits for the catch-up.
            directory.after_catch_up(
                partial(
                    evaluate_periodically,
                    programmes=programmes,
                    holders=directory.holders,
                    chunk=settings.tiering_evaluation_chunk,
                    interval_s=settings.tiering_evaluation_interval_s,
                    retention_days=settings.tiering_parked_retention_days,
                ),
            ),
        ),
    )
    return directory.attach(service)


def bootstrap(
    settings: TieringSettings | None = None,
    *,
    clock: Clock | None = None,
    programme: Programme | None = None,
    programmes: TierProgrammes | None = None,
) -> tuple[AsgiFastStream, Runtime]:
    settings = settings or TieringSettings()
    clock = clock or SystemClock()
    service = definition(settings, clock=clock, programme=programme, programmes=programmes)
    return build_app(service, settings, clock=clock)
