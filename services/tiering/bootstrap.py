"""The one place that wires the tiering service: settings, programme, clock, handlers, runtime."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Final

from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp

from services.tiering.domain.rules import Basis, Programme
from services.tiering.evaluation import evaluate_periodically
from services.tiering.handlers import apply_activity, apply_memberships
from services.tiering.http import build_api
from services.tiering.programme import load_programme
from services.tiering.settings import TieringSettings
from services.tiering.shops import TierProgrammes
from shared.clock import Clock, SystemClock
from shared.runtime import Runtime, ServiceDefinition, build_app

SCHEMA: Final = "tiering"
MIGRATIONS: Final = Path(__file__).parent / "migrations"
MEMBERSHIPS: Final = "loyalty.memberships"
BASIS_TOPICS: Final = {Basis.SPEND: "shop.orders", Basis.POINTS: "loyalty.points"}


def basis_topic(programme: Programme) -> str:
    """The topic whose events move the qualifying totals."""
    return BASIS_TOPICS[programme.basis]


def definition(
    settings: TieringSettings,
    *,
    clock: Clock | None = None,
    programme: Programme | None = None,
    programmes: TierProgrammes | None = None,
) -> ServiceDefinition:
    """Raises ProgrammeError, naming the setting, when the programme file is not valid.

    `programmes`: every shop's versions; without it, the shop `default` alone, under
    `programme` (or the programme file). Both basis topics are read, as each shop's programme
    says which of them counts for it.
    """
    if programmes is None:
        programmes = TierProgrammes(programme or load_programme(settings.tiering_programme))
    clock = clock or SystemClock()

    def http_api(runtime: Runtime) -> ASGIApp:
        key = settings.tiering_admin_api_key
        return build_api(runtime, programmes=programmes, admin_api_key=key)

    activity = partial(
        apply_activity,
        programmes=programmes,
        schema=SCHEMA,
        clock=clock,
        ahead_max=timedelta(seconds=settings.event_ahead_max_s),
    )
    return ServiceDefinition(
        name="tiering",
        schema=SCHEMA,
        migrations=MIGRATIONS,
        handlers={
            **dict.fromkeys(BASIS_TOPICS.values(), activity),
            MEMBERSHIPS: partial(
                apply_memberships, programmes=programmes, schema=SCHEMA, clock=clock
            ),
        },
        produces=("loyalty.tiers",),
        http_api=http_api,
        background=(
            partial(
                evaluate_periodically,
                programmes=programmes,
                chunk=settings.tiering_evaluation_chunk,
                interval_s=settings.tiering_evaluation_interval_s,
                retention_days=settings.tiering_parked_retention_days,
            ),
        ),
    )


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
