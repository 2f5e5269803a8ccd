"""Use cases of the shops service: shops from templates, programme versions, API keys;
those of coalitions are in services/shops/coalitions.py.

Each change runs in one transaction that also writes its audit row and enqueues the event
announcing it on loyalty.shops, so that no change goes unannounced or unaudited.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Final

from services.earn.domain.orders import earning_of
from services.earn.programme import Programme as EarnProgramme
from services.shops.adapters import announcements, store
from services.shops.documents import KINDS, check_document, check_earns_in, check_reason
from services.shops.keys import new_secret
from services.shops.records import ApiKey, AuditEntry, Membership, NewApiKey, Shop, Version
from services.shops.refusals import Conflict, InvalidDocument, NotFound
from shared.api_keys import key_sha256
from shared.db import Connection
from shared.errors import Bug
from shared.events import OrderPaid
from shared.events.fields import EVENT_TIME_START
from shared.events.shops import ProgrammeKind, Scope, ShopKind

TEMPLATES: Final = Path(__file__).parent / "templates"
# LOYALTY_SHOPS_EFFECTIVE_LEAD_S's default (services/shops/settings.py).
DEFAULT_LEAD: Final = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Change:
    """Who makes a change, and when: a key's prefix or "cli:<os user>"; the service's clock;
    and the lead after which, at the earliest, a version it publishes takes effect."""

    actor: str
    now: datetime
    lead: timedelta = DEFAULT_LEAD

    @property
    def earliest(self) -> datetime:
        """When a version published by this change may start, at the earliest."""
        return self.now + self.lead


def templates() -> list[str]:
    return sorted(p.name for p in TEMPLATES.iterdir() if (p / "shop.toml").is_file())


def validate_draft(kind: str, text: str) -> None:
    """Check a document of `kind` without saving it: InvalidDocument naming each setting."""
    check_document(kind, text)


async def create_shop(
    conn: Connection,
    change: Change,
    *,
    shop_id: str,
    template: str,
    name: str | None = None,
    coalition_id: str | None = None,
    kind: ShopKind = "shop",
) -> Shop:
    """A shop with the template's currency, zone and locale, and version 1 of each programme;
    created in a coalition, a member from the first event time on (it has no earlier events).
    A coalition (`kind`) is created the same way, and joins none."""
    if template not in templates():
        raise InvalidDocument(
            f"unknown template {template!r}", [("template", f"one of {', '.join(templates())}")]
        )
    folder = TEMPLATES / template
    about = tomllib.loads((folder / "shop.toml").read_text(encoding="utf-8"))
    shop = Shop(
        shop_id=shop_id,
        name=name or about["name"],
        currency=about["currency"],
        time_zone=about["time_zone"],
        locale=about["locale"],
        coalition_id=coalition_id,
        created_at=change.now,
        kind=kind,
    )
    async with conn.transaction():
        if not await store.insert_shop(conn, shop):
            raise Conflict(f"the shop {shop_id!r} exists already")
        if coalition_id is not None:
            await coalition_to_join(conn, coalition_id, currency=shop.currency)
        await store.audit(
            conn,
            at=change.now,
            actor=change.actor,
            shop_id=shop_id,
            action="shop.created",
            template=template,
            name=shop.name,
            kind=kind,
            coalition_id=coalition_id,
        )
        await announcements.shop_created(conn, shop)
        if coalition_id is not None:
            # Before the programme versions, in the same transaction: a service that knows
            # the shop's programmes knows its membership too.
            await write_membership(
                conn,
                change,
                shop_id=shop_id,
                coalition_id=coalition_id,
                starts=EVENT_TIME_START,
                reason="created in the coalition",
            )
        for programme in KINDS:
            text = (folder / f"{programme}.toml").read_text(encoding="utf-8")
            await _publish(
                conn,
                change,
                shop_id=shop_id,
                kind=programme,
                text=text,
                starts=change.earliest,
                reason=f"template {template}",
            )
    return shop


async def list_shops(conn: Connection) -> list[Shop]:
    return await store.shops(conn)


async def find_shop(conn: Connection, shop_id: str) -> Shop:
    found = await store.shop(conn, shop_id)
    if found is None:
        raise NotFound(f"no shop {shop_id!r}")
    return found


async def publish_version(
    conn: Connection,
    change: Change,
    *,
    shop_id: str,
    kind: ProgrammeKind,
    text: str,
    effective_from: datetime | None = None,
    reason: str = "",
) -> Version:
    """A new version, in force from effective_from: at the earliest (and by default) the
    change's lead after now, so that every service holds it before events of its time."""
    check_document(kind, text)
    check_reason(reason)
    starts = effective_from or change.earliest
    check_lead(change, starts)
    async with conn.transaction():
        return await _publish(
            conn, change, shop_id=shop_id, kind=kind, text=text, starts=starts, reason=reason
        )


async def _publish(
    conn: Connection,
    change: Change,
    *,
    shop_id: str,
    kind: ProgrammeKind,
    text: str,
    starts: datetime,
    reason: str,
    detail: dict[str, object] | None = None,
) -> Version:
    if await store.shop(conn, shop_id, lock=True) is None:
        raise NotFound(f"no shop {shop_id!r}")
    number = await store.next_version(conn, shop_id, kind)
    before = await store.version(conn, shop_id, kind, number - 1)
    check_order(starts, None if before is None else before.effective_from, number)
    version = Version(
        shop_id=shop_id,
        kind=kind,
        version=number,
        effective_from=starts,
        toml=text,
        published_by=change.actor,
        published_at=change.now,
        reason=reason,
    )
    await store.insert_version(conn, version)
    summary = _changed_settings(before, text)
    await store.audit(
        conn,
        at=change.now,
        actor=change.actor,
        shop_id=shop_id,
        action="programme.published",
        kind=kind,
        version=number,
        effective_from=starts.isoformat(),
        reason=reason,
        changed=summary,
        **(detail or {}),
    )
    await announcements.programme_published(conn, version)
    return version


def check_lead(change: Change, starts: datetime) -> None:
    """A version (of a programme or a membership) starts the change's lead after now at the
    earliest, so that every service holds it before events of its time arrive."""
    if starts < change.earliest:
        lead_s = int(change.lead.total_seconds())
        raise InvalidDocument(
            f"a version may start {lead_s} s after its publication at the earliest",
            [
                (
                    "effective_from",
                    f"must be at least {lead_s} s after now ({change.earliest.isoformat()}): "
                    "every service must hold the version before events of its time arrive",
                )
            ],
        )


def check_order(starts: datetime, before: datetime | None, number: int) -> None:
    """Versions take effect in their order: a later version starting earlier would make
    version N apply before version N-1, and no one reading the list would expect that."""
    if before is not None and starts < before:
        raise InvalidDocument(
            f"version {number} may not start before version {number - 1}",
            [
                (
                    "effective_from",
                    f"must be at or after {before.isoformat()}, when version "
                    f"{number - 1} takes effect",
                )
            ],
        )


async def coalition_to_join(conn: Connection, coalition_id: str, *, currency: str) -> Shop:
    """The coalition a shop of `currency` may join: 422 naming coalition_id when it is no
    coalition, or when its latest earn version has no rate for the currency."""
    found = await store.shop(conn, coalition_id)
    if found is None or found.kind != "coalition":
        raise InvalidDocument(
            f"no coalition {coalition_id!r}", [("coalition_id", "must name a coalition")]
        )
    latest = await store.version(
        conn, coalition_id, "earn", await store.next_version(conn, coalition_id, "earn") - 1
    )
    check_earns_in(latest.toml if latest else "", currency, coalition_id=coalition_id)
    return found


async def write_membership(
    conn: Connection,
    change: Change,
    *,
    shop_id: str,
    coalition_id: str | None,
    starts: datetime,
    reason: str,
) -> Membership:
    """The shop's next membership version (the shop row locked by the caller): audited as
    coalition.joined or coalition.left, and announced before anything later of the shop."""
    number = await store.next_membership(conn, shop_id)
    before = await store.membership(conn, shop_id, number - 1)
    check_order(starts, None if before is None else before.effective_from, number)
    membership = Membership(
        shop_id=shop_id,
        version=number,
        coalition_id=coalition_id,
        effective_from=starts,
        published_by=change.actor,
        published_at=change.now,
        reason=reason,
    )
    await store.insert_membership(conn, membership)
    await store.set_current_coalition(conn, shop_id, coalition_id)
    left = None if before is None else before.coalition_id
    await store.audit(
        conn,
        at=change.now,
        actor=change.actor,
        shop_id=shop_id,
        action="coalition.joined" if coalition_id is not None else "coalition.left",
        version=number,
        coalition_id=coalition_id if coalition_id is not None else left,
        effective_from=starts.isoformat(),
        reason=reason,
    )
    await announcements.coalition_changed(conn, membership)
    return membership


def _changed_settings(before: Version | None, text: str) -> list[str]:
    """The top-level settings that differ from the previous version: the audit's 'what'."""
    new = tomllib.loads(text)
    if before is None:
        return sorted(new)
    old = tomllib.loads(before.toml)
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


async def list_versions(conn: Connection, shop_id: str, kind: ProgrammeKind) -> list[Version]:
    await find_shop(conn, shop_id)
    return await store.versions(conn, shop_id, kind)


async def show_version(conn: Connection, shop_id: str, kind: ProgrammeKind, number: int) -> Version:
    found = await store.version(conn, shop_id, kind, number)
    if found is None:
        raise NotFound(f"no version {number} of the {kind} programme of shop {shop_id!r}")
    return found


async def roll_back(
    conn: Connection,
    change: Change,
    *,
    shop_id: str,
    kind: ProgrammeKind,
    to: int,
    reason: str = "",
) -> Version:
    """Publish an old version's document again, as a new version in force after the lead."""
    check_reason(reason)
    async with conn.transaction():
        old = await show_version(conn, shop_id, kind, to)
        why = reason or f"rollback to version {to}"
        return await _publish(
            conn,
            change,
            shop_id=shop_id,
            kind=kind,
            text=old.toml,
            starts=change.earliest,
            reason=why,
            detail={"rolled_back_to": to},
        )


@dataclass(frozen=True, slots=True)
class Preview:
    """What an order would earn under a draft earn programme, before caps and tier changes."""

    earns: bool  # False when the draft has no rate for the order's currency
    base_amount: Decimal
    base_points: int
    tier_points: int
    campaign_points: int
    store_credit_minor: int

    @property
    def points(self) -> int:
        return self.tier_points + self.campaign_points


def preview(text: str, order: OrderPaid, *, paid_at: datetime, multiplier: Decimal) -> Preview:
    """Earn's own rules applied to the draft: nothing is saved, nothing is announced."""
    programme = check_document("earn", text)
    if not isinstance(programme, EarnProgramme):
        raise Bug("the earn validator returned another programme")
    earning = earning_of(order, paid_at, programme, multiplier)
    if earning is None:
        return Preview(False, Decimal(0), 0, 0, 0, 0)
    bonus = sum(b.points for b in earning.bonuses)
    return Preview(
        True,
        earning.base_amount,
        earning.base_points,
        earning.tier_points,
        bonus,
        earning.credit_minor,
    )


async def create_key(
    conn: Connection, change: Change, *, shop_id: str | None, scopes: list[Scope]
) -> NewApiKey:
    """A new key of a shop (or, shop_id None, a platform operator's key); its secret is
    returned this once."""
    async with conn.transaction():
        return await _create_key(conn, change, shop_id, scopes, action="api_key.created")


async def _create_key(
    conn: Connection,
    change: Change,
    shop_id: str | None,
    scopes: list[Scope],
    *,
    action: str,
    replaces: str | None = None,
) -> NewApiKey:
    if shop_id is not None:
        await find_shop(conn, shop_id)
    wanted: list[Scope] = sorted(set(scopes))
    if not wanted or ("platform" in wanted) != (shop_id is None):
        raise InvalidDocument(
            "a key's scopes do not fit its owner",
            [
                (
                    "scopes",
                    "a platform key has the scope platform and no shop; a shop's key has "
                    "read, redeem or admin",
                )
            ],
        )
    made = new_secret()
    key = ApiKey(
        key_id=made.key_id,
        shop_id=shop_id,
        prefix=made.prefix,
        scopes=wanted,
        created_at=change.now,
        created_by=change.actor,
    )
    await store.insert_key(conn, key, sha256=made.sha256)
    await store.audit(
        conn,
        at=change.now,
        actor=change.actor,
        shop_id=shop_id,
        action=action,
        key_id=key.key_id,
        prefix=key.prefix,
        scopes=list(wanted),
        replaces=replaces,
    )
    await announcements.key_created(conn, key, sha256=made.sha256)
    return NewApiKey(**key.model_dump(), secret=made.secret)


async def list_keys(conn: Connection, shop_id: str | None) -> list[ApiKey]:
    if shop_id is not None:
        await find_shop(conn, shop_id)
    return await store.keys(conn, shop_id)


async def revoke_key(
    conn: Connection, change: Change, *, shop_id: str | None, key_id: str
) -> ApiKey:
    """The key opens nothing from now; revoking a revoked key changes nothing."""
    async with conn.transaction():
        return await _revoke(conn, change, shop_id, key_id, action="api_key.revoked")


async def _revoke(
    conn: Connection, change: Change, shop_id: str | None, key_id: str, *, action: str
) -> ApiKey:
    key = await store.key(conn, shop_id, key_id)
    if key is None:
        raise NotFound(f"no key {key_id!r}")
    if key.revoked_at is not None:
        return key
    await store.revoke_key(conn, key_id, change.now)
    await store.audit(
        conn,
        at=change.now,
        actor=change.actor,
        shop_id=shop_id,
        action=action,
        key_id=key_id,
        prefix=key.prefix,
    )
    await announcements.key_revoked(conn, key, at=change.now)
    return key.model_copy(update={"revoked_at": change.now})


async def rotate_key(
    conn: Connection, change: Change, *, shop_id: str | None, key_id: str
) -> NewApiKey:
    """A new key with the old one's scopes; the old one is revoked in the same transaction."""
    async with conn.transaction():
        old = await _revoke(conn, change, shop_id, key_id, action="api_key.revoked")
        if old.revoked_at != change.now:
            raise Conflict(f"the key {key_id!r} is revoked already")
        return await _create_key(
            conn, change, shop_id, list(old.scopes), action="api_key.rotated", replaces=key_id
        )


async def audit_trail(
    conn: Connection, shop_id: str | None, *, limit: int = 100
) -> list[AuditEntry]:
    if shop_id is not None:
        await find_shop(conn, shop_id)
    return await store.audit_entries(conn, shop_id, limit=limit)


async def key_of(conn: Connection, secret: str) -> ApiKey | None:
    """The key a caller presents, if it exists and is not revoked."""
    found = await store.key_by_hash(conn, key_sha256(secret))
    return None if found is None or found.revoked_at is not None else found
