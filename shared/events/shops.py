"""Data models of the shops service's events (topic loyalty.shops): shops, programme versions
and API keys, as every service's projection of them reads them.

Their CloudEvents subject and Kafka key is the shop id ("platform" for a platform key), so
that one shop's changes stay in order.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from shared.events.fields import (
    CONTROLS,
    Contract,
    EventTime,
    Identifier,
    Label,
    Locale,
    ShopId,
    Timestamp,
    TimeZoneName,
)
from shared.events.money import Currency

__all__ = [
    "PLATFORM_SUBJECT",
    "ApiKeyCreated",
    "ApiKeyRevoked",
    "ProgrammeKind",
    "ProgrammePublished",
    "ProgrammeText",
    "Reason",
    "Scope",
    "ShopCoalitionChanged",
    "ShopCreated",
    "ShopKind",
]

PLATFORM_SUBJECT = "platform"

ProgrammeKind = Literal["earn", "tiers", "messages"]
# A coalition is a shop of its own kind: its programmes, keys and audit trail, and no events.
ShopKind = Literal["shop", "coalition"]
Scope = Literal["read", "redeem", "admin", "platform"]

# A programme document is TOML; the largest shipped one is about 3 kB.
ProgrammeText = Annotated[str, StringConstraints(min_length=1, max_length=256_000)]
# Why a version was published: free text on one line, possibly empty.
Reason = Annotated[str, StringConstraints(max_length=1000, pattern=rf"^[^{CONTROLS}]*$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


def _a_shop(kind: str) -> bool:
    # Left out of the JSON for a shop: shop.created stays as it was before coalitions.
    return kind == "shop"


class ShopCreated(Contract):
    """A shop (or a coalition) was created, with its currency, time zone and locale."""

    shop_id: ShopId
    name: Label
    currency: Currency
    time_zone: TimeZoneName
    locale: Locale
    coalition_id: Identifier | None = Field(
        default=None, description="The coalition the shop was created in, if any."
    )
    kind: ShopKind = Field(
        default="shop",
        description="'coalition': a group of shops sharing accounts; absent for a shop.",
        exclude_if=_a_shop,
    )


class ShopCoalitionChanged(Contract):
    """A new version of a shop's membership: from effective_from, the shop's accounts are held
    by `coalition_id`, or by the shop itself when it is None (it left)."""

    shop_id: ShopId
    version: int = Field(gt=0)
    coalition_id: ShopId | None = Field(description="None: the shop stands alone.")
    effective_from: EventTime
    changed_by: Label
    reason: Reason = ""


class ProgrammePublished(Contract):
    """A new version of one of a shop's programmes; it applies to events from effective_from."""

    shop_id: ShopId
    kind: ProgrammeKind
    version: int = Field(gt=0)
    effective_from: EventTime
    toml: ProgrammeText
    published_by: Label
    reason: Reason = ""


class ApiKeyCreated(Contract):
    """An API key was made; only the sha256 of the secret travels."""

    key_id: Identifier
    shop_id: ShopId | None = Field(description="None for a platform operator's key.")
    prefix: Label
    key_sha256: Sha256Hex
    scopes: list[Scope] = Field(min_length=1)
    created_at: Timestamp


class ApiKeyRevoked(Contract):
    """An API key no longer opens anything, from revoked_at."""

    key_id: Identifier
    shop_id: ShopId | None
    revoked_at: Timestamp
