"""The events that announce the shops service's changes on loyalty.shops, through its outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Final

from pydantic import BaseModel

from services.shops.adapters.store import SCHEMA
from services.shops.records import ApiKey, Membership, Shop, Version
from shared.db import Connection
from shared.events import encode_event, make_event
from shared.events.shops import (
    PLATFORM_SUBJECT,
    ApiKeyCreated,
    ApiKeyRevoked,
    ProgrammePublished,
    ShopCoalitionChanged,
    ShopCreated,
)
from shared.outbox import OutboxMessage, enqueue

TOPIC: Final = "loyalty.shops"
SOURCE: Final = "loyalty/shops"


async def announce(
    conn: Connection, type_: str, data: BaseModel, *, shop_id: str | None, at: datetime
) -> None:
    """Enqueue one event, keyed by its shop so that a shop's changes stay in order."""
    subject = shop_id or PLATFORM_SUBJECT
    event = make_event(type_, source=SOURCE, subject=subject, data=data, time=at)
    await enqueue(conn, SCHEMA, [OutboxMessage(TOPIC, subject.encode(), encode_event(event))])


async def shop_created(conn: Connection, shop: Shop) -> None:
    data = ShopCreated(
        shop_id=shop.shop_id,
        name=shop.name,
        currency=shop.currency,
        time_zone=shop.time_zone,
        locale=shop.locale,
        coalition_id=shop.coalition_id,
        kind=shop.kind,
    )
    await announce(conn, "shop.created", data, shop_id=shop.shop_id, at=shop.created_at)


async def coalition_changed(conn: Connection, membership: Membership) -> None:
    data = ShopCoalitionChanged(
        shop_id=membership.shop_id,
        version=membership.version,
        coalition_id=membership.coalition_id,
        effective_from=membership.effective_from,
        changed_by=membership.published_by,
        reason=membership.reason,
    )
    await announce(
        conn,
        "shop.coalition_changed",
        data,
        shop_id=membership.shop_id,
        at=membership.published_at,
    )


async def programme_published(conn: Connection, version: Version) -> None:
    data = ProgrammePublished(
        shop_id=version.shop_id,
        kind=version.kind,
        version=version.version,
        effective_from=version.effective_from,
        toml=version.toml,
        published_by=version.published_by,
        reason=version.reason,
    )
    await announce(
        conn, "programme.published", data, shop_id=version.shop_id, at=version.published_at
    )


async def key_created(conn: Connection, key: ApiKey, *, sha256: str) -> None:
    data = ApiKeyCreated(
        key_id=key.key_id,
        shop_id=key.shop_id,
        prefix=key.prefix,
        key_sha256=sha256,
        scopes=list(key.scopes),
        created_at=key.created_at,
    )
    await announce(conn, "api_key.created", data, shop_id=key.shop_id, at=key.created_at)


async def key_revoked(conn: Connection, key: ApiKey, *, at: datetime) -> None:
    data = ApiKeyRevoked(key_id=key.key_id, shop_id=key.shop_id, revoked_at=at)
    await announce(conn, "api_key.revoked", data, shop_id=key.shop_id, at=at)
