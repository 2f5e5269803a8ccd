"""Earn's scheduled passes (release of pending points, expiry, birthdays, the coalition sweep)
start only once the shop directory has caught up with loyalty.shops: a pass never runs a shop
under a programme version it has not read yet."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, cast

import pytest

from services.earn.bootstrap import definition
from services.earn.programme import parse_programme
from services.earn.settings import EarnSettings
from shared.shop_directory import ShopDirectory

if TYPE_CHECKING:
    from shared.runtime import Runtime

PROGRAMME = parse_programme({"currencies": {"USD": {"per_amount": Decimal(1), "points": 1}}})


class PassStarted(Exception):
    """A scheduled pass asked for the database: it has begun its work."""


class WatchedRuntime:
    """A runtime that tells when a pass begins its work, and does none of it."""

    def __init__(self) -> None:
        self.started = 0

    def require_pool(self) -> None:
        self.started += 1
        raise PassStarted


async def test_the_scheduled_passes_wait_for_the_directory_catch_up() -> None:
    directory = ShopDirectory("earn")
    service = definition(EarnSettings(), programme=PROGRAMME, directory=directory)
    passes = [task for task in service.background if task != directory.follow]
    watched = WatchedRuntime()
    runtime = cast("Runtime", watched)
    running = [asyncio.ensure_future(p(runtime)) for p in passes]

    await asyncio.sleep(0.05)
    assert len(running) == 4
    assert watched.started == 0
    assert not any(task.done() for task in running)

    directory.caught_up.set()
    for task in running:
        with pytest.raises(PassStarted):
            await asyncio.wait_for(task, timeout=5)
    assert watched.started == 4
