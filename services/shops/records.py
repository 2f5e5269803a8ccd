"""What the shops service keeps, as its use cases and API return it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.events.shops import ProgrammeKind, Scope, ShopKind


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Shop(_Record):
    shop_id: str
    name: str
    currency: str
    time_zone: str
    locale: str
    coalition_id: str | None = Field(
        default=None, description="The coalition the shop is in by its latest membership version."
    )
    created_at: datetime
    kind: ShopKind = Field(default="shop", description="'coalition': a group of shops.")


class Membership(_Record):
    """One immutable version of a shop's membership: in `coalition_id` (None: standing alone)
    from `effective_from`."""

    shop_id: str
    version: int
    coalition_id: str | None
    effective_from: datetime
    published_by: str
    published_at: datetime
    reason: str


class Member(_Record):
    """A shop of a coalition by its latest version, and since when."""

    shop_id: str
    since: datetime


class Version(_Record):
    """One immutable version of a shop's programme of one kind."""

    shop_id: str
    kind: ProgrammeKind
    version: int
    effective_from: datetime
    toml: str
    published_by: str
    published_at: datetime
    reason: str


class ApiKey(_Record):
    """A key as listed: its prefix, never its secret nor its hash."""

    key_id: str
    shop_id: str | None = Field(description="None for a platform operator's key.")
    prefix: str
    scopes: list[Scope]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None


class NewApiKey(ApiKey):
    """A key just made: `secret` is shown this once and kept nowhere."""

    secret: str = Field(description="The whole key, for the X-API-Key header; shown only once.")


class AuditEntry(_Record):
    id: int
    at: datetime
    actor: str
    shop_id: str | None
    action: str
    detail: dict[str, Any]
