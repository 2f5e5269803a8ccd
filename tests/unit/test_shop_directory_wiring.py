"""The directory wired into a service: configured keys as platform keys, loyalty.shops
consumed, the follower in the background, and input handlers held until the catch-up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from shared.api_keys import key_sha256
from shared.consumer import Incoming, Rejection
from shared.db import Connection
from shared.errors import TransientFailure
from shared.events import make_event
from shared.events.shops import ApiKeyCreated, ApiKeyRevoked, ProgrammePublished
from shared.runtime import Runtime, ServiceDefinition
from shared.shop_directory import TOPIC, ShopDirectory

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_configured_key_is_a_platform_key_and_another_is_nobody() -> None:
    directory = ShopDirectory("svc", configured_keys=(SecretStr("configured-secret"),))

    caller = directory.caller_for("configured-secret")

    assert caller is not None
    assert caller.shop_id is None
    assert all(caller.may(s) for s in ("read", "redeem", "admin"))
    assert directory.caller_for("configured-secre") is None
    assert "configured-secret" not in repr(directory)


async def handled(_conn: Connection, _batch: Sequence[Incoming]) -> Sequence[Rejection]:
    return []


def service() -> ServiceDefinition:
    async def work(_runtime: Runtime) -> None:
        return None

    return ServiceDefinition(
        name="svc",
        schema="svc",
        migrations=Path(),
        handlers={"shop.orders": handled},
        http_api=lambda _runtime: FastAPI(),
        background=(work,),
    )


async def test_attach_consumes_the_topic_follows_it_and_serves_the_directory() -> None:
    directory = ShopDirectory("svc")

    wired = directory.attach(service())
    api: Any = wired.http_api(None) if wired.http_api else None  # type: ignore[arg-type] # unused

    assert wired.handlers[TOPIC] == directory.record_changes
    assert set(wired.handlers) == {TOPIC, "shop.orders"}
    # The catch-up starts with the service, while its consumers join their groups.
    assert wired.starting == (directory.follow,)
    assert len(wired.background) == 1
    assert api.state.shop_directory is directory


async def test_input_handlers_apply_nothing_before_the_catch_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.shop_directory.CATCH_UP_WAIT_S", 0.01)
    directory = ShopDirectory("svc")
    orders = directory.attach(service()).handlers["shop.orders"]

    with pytest.raises(TransientFailure):
        await orders(None, [])  # type: ignore[arg-type] # never reached before the catch-up
    directory.caught_up.set()
    assert await orders(None, []) == []  # type: ignore[arg-type] # the handler uses none


async def test_background_work_starts_once_caught_up() -> None:
    directory = ShopDirectory("svc")
    started: list[str] = []

    async def work(_runtime: Runtime) -> None:
        started.append("work")

    start = directory.after_catch_up(work)
    task: asyncio.Task[None] = asyncio.create_task(start(None))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    waiting = list(started)
    directory.caught_up.set()
    await asyncio.wait_for(task, 5)
    assert (waiting, started) == ([], ["work"])


def incoming(data: Any, type_: str) -> Incoming:
    event = make_event(type_, source="tests", subject=data.shop_id or "platform", data=data)
    return Incoming(TOPIC, 0, 0, None, b"", (), event)


def test_the_catch_up_remembers_versions_keys_and_revocations() -> None:
    directory = ShopDirectory("svc")
    told: list[tuple[str, int]] = []
    directory.on_programme("earn", lambda shop, number, _at, _toml: told.append((shop, number)))
    secret = "lk_secret-of-the-catch-up"
    published = ProgrammePublished(
        shop_id="a",
        kind="earn",
        version=1,
        effective_from=AT,
        toml="x=1",
        published_by="test",
        reason="",
    )
    created = ApiKeyCreated(
        key_id="k1",
        shop_id="a",
        prefix=secret[:12],
        key_sha256=key_sha256(secret),
        scopes=("read",),
        created_at=AT,
    )

    directory.remember(incoming(published, "programme.published"))
    directory.remember(incoming(created, "api_key.created"))
    known = directory.caller_for(secret)
    directory.remember(
        incoming(ApiKeyRevoked(key_id="k1", shop_id="a", revoked_at=AT), "api_key.revoked")
    )

    assert told == [("a", 1)]
    assert known is not None
    assert known.shop_id == "a"
    assert directory.caller_for(secret) is None
