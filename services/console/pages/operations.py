"""The operations page: the shop's dead letters with their reason, and their replay."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from services.console import dead_letters
from services.console.adapters import accounts
from services.console.auth import NotFound, ShopAccess, require
from services.console.context import Console, console_of
from services.console.dead_letters import NotTheShops, Scope
from services.console.domain.roles import Capability
from services.console.pages.shops import server_timing, shop_settings
from services.console.rendering import render
from services.dlq.records import parse_position
from services.dlq.replay import ReplayBusy, ReplayReport
from shared.kafka_connection import KafkaConnection
from shared.topics import ALL_TOPICS

router = APIRouter()

Viewer = Annotated[ShopAccess, Depends(require(Capability.SEE_DEAD_LETTERS))]
Replayer = Annotated[ShopAccess, Depends(require(Capability.REPLAY_DEAD_LETTERS))]
TOPIC = "^[a-z][a-z0-9._-]{0,99}$"
ERROR_CLASS = "^[A-Za-z_][A-Za-z0-9_.]{0,99}$"
TopicFilter = Annotated[str | None, Query(pattern=TOPIC)]
ClassFilter = Annotated[str | None, Query(pattern=ERROR_CLASS)]


def _scope(access: ShopAccess) -> Scope:
    """A body that is not JSON names no shop: only platform operators see those."""
    return Scope(access.shop, shopless=access.user.platform_operator)


def _kafka(console: Console) -> KafkaConnection:
    return KafkaConnection.from_settings(console.settings)


async def _page(
    request: Request,
    access: ShopAccess,
    *,
    topic: str | None,
    error_class: str | None,
    outcome: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    console = console_of(request)
    reading = dead_letters.read_dead_letters(
        console.pool,
        _scope(access),
        topic=topic if topic in ALL_TOPICS else None,
        error_class=error_class,
        shown=console.settings.console_dead_letters_shown,
    )
    (shop, formats), found = await asyncio.gather(shop_settings(request, access), reading)
    context = {
        "access": access,
        "shop": shop,
        "found": found,
        "topics": ALL_TOPICS,
        "topic": topic,
        "error_class": error_class,
        "outcome": outcome,
    }
    return render(
        request,
        "operations.html",
        context,
        formats=formats,
        status_code=status_code,
        headers=server_timing(access),
    )


@router.get("/shops/{shop}/operations")
async def operations(
    request: Request, access: Viewer, topic: TopicFilter = None, error_class: ClassFilter = None
) -> Response:
    return await _page(request, access, topic=topic or None, error_class=error_class or None)


@router.post("/shops/{shop}/operations/replay")
async def replay_selected(
    request: Request,
    access: Replayer,
    position: Annotated[list[str], Form(min_length=1, max_length=500)],
) -> Response:
    """Replay the dead letters ticked on the page; one not the shop's: 404, none replayed."""
    try:
        positions = frozenset(parse_position(p) for p in position)
    except ValueError:
        raise NotFound from None
    console = console_of(request)
    url = console.settings.database_url.get_secret_value()
    replaying = dead_letters.replay_positions(_kafka(console), url, _scope(access), positions)
    return await _replayed(request, access, replaying, topic=None, error_class=None)


@router.post("/shops/{shop}/operations/replay-class")
async def replay_error_class(
    request: Request,
    access: Replayer,
    error_class: Annotated[str, Form(pattern=ERROR_CLASS)],
    topic: Annotated[str, Form(pattern=f"({TOPIC})|^$")] = "",
) -> Response:
    """Replay every dead letter of the shop with this error class (of the filtered topic)."""
    console = console_of(request)
    url = console.settings.database_url.get_secret_value()
    chosen = topic if topic in ALL_TOPICS else None
    replaying = dead_letters.replay_class(
        _kafka(console), url, _scope(access), error_class=error_class, topic=chosen
    )
    return await _replayed(request, access, replaying, topic=chosen, error_class=error_class)


async def _replayed(
    request: Request,
    access: ShopAccess,
    replaying: Coroutine[Any, Any, ReplayReport],
    *,
    topic: str | None,
    error_class: str | None,
) -> Response:
    console = console_of(request)
    outcome: dict[str, Any]
    try:
        async with asyncio.timeout(console.settings.console_dead_letters_replay_timeout_s):
            report = await replaying
    except NotTheShops:
        raise NotFound from None
    except ReplayBusy:
        outcome, status = {"busy": True}, 409
    except dead_letters.KAFKA_FAILURES:
        outcome, status = {"unavailable": True}, 503
    else:
        await _log(console, access, report)
        outcome = {"replayed": len(report.replayed), "skipped": report.already_replayed}
        status = 200
    return await _page(
        request, access, topic=topic, error_class=error_class, outcome=outcome, status_code=status
    )


async def _log(console: Console, access: ShopAccess, report: ReplayReport) -> None:
    async with console.pool.acquire() as conn:
        for dead in report.replayed:
            await accounts.record_action(
                conn,
                at=console.now(),
                user_id=access.user.user_id,
                action="dead_letter.replayed",
                shop_id=access.shop,
                target=dead.position,
            )
