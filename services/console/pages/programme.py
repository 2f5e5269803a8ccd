"""The programme pages: each kind's versions (in force, scheduled, past) with the editor, one
version, a rollback with its reason (the editor's form is programme_editor.py)."""

from __future__ import annotations

import asyncio
import difflib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from services.console.adapters import accounts
from services.console.adapters.upstream import (
    JsonObject,
    UpstreamError,
    UpstreamProblem,
)
from services.console.auth import ShopAccess, require
from services.console.context import console_of
from services.console.domain import programme_forms as forms
from services.console.domain.roles import Capability
from services.console.pages.shops import server_timing, shop_settings
from services.console.rendering import reader_language, render, translations
from shared.events.shops import ProgrammeKind

router = APIRouter()

KINDS: Final = ("earn", "tiers", "messages")
Viewer = Annotated[ShopAccess, Depends(require(Capability.VIEW))]
Editor = Annotated[ShopAccess, Depends(require(Capability.EDIT_PROGRAMME))]
KindPath = Annotated[ProgrammeKind, Path()]
VersionPath = Annotated[int, Path(ge=1, le=2_147_483_647)]
Reason = Annotated[str, Form(min_length=1, max_length=255)]


@dataclass
class Editing:
    """What the editor shows: the draft, the errors by field and above the editor, a preview."""

    toml: str
    base: int | None
    errors: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    valid: bool = False
    preview: JsonObject | None = None
    sample: dict[str, str] = field(default_factory=dict)
    entered: dict[str, str] = field(default_factory=dict)


def with_times(versions: list[JsonObject]) -> list[JsonObject]:
    """The versions with their times as datetimes, for the pages' date filters."""
    return [
        {
            **v,
            "effective_from": datetime.fromisoformat(v["effective_from"]),
            "published_at": datetime.fromisoformat(v["published_at"]),
        }
        for v in versions
    ]


def in_force(versions: list[JsonObject], now: datetime) -> JsonObject | None:
    started = [v for v in versions if v["effective_from"] <= now]
    return max(started, key=lambda v: v["version"]) if started else None


@router.get("/shops/{shop}/programme")
async def programme(request: Request, access: Viewer) -> Response:
    (shop, formats), listed = await asyncio.gather(
        shop_settings(request, access),
        asyncio.gather(*(_versions(access, kind) for kind in KINDS)),
    )
    now = console_of(request).now()
    kinds = [
        {
            "kind": kind,
            "versions": versions,
            "current": None if versions is None else in_force(versions, now),
            "scheduled": []
            if versions is None
            else [v for v in versions if v["effective_from"] > now],
        }
        for kind, versions in zip(KINDS, listed, strict=True)
    ]
    context = {"access": access, "shop": shop, "kinds": kinds}
    return render(
        request, "programme.html", context, formats=formats, headers=server_timing(access)
    )


async def _versions(access: ShopAccess, kind: str) -> list[JsonObject] | None:
    try:
        return with_times(await access.api.versions(kind))
    except UpstreamError:
        return None


@router.get("/shops/{shop}/programme/{kind}")
async def programme_kind(request: Request, access: Viewer, kind: KindPath) -> Response:
    return await kind_page(request, access, kind)


async def kind_page(
    request: Request,
    access: ShopAccess,
    kind: str,
    editing: Editing | None = None,
    *,
    status_code: int = 200,
    refused: str | None = None,
) -> Response:
    (shop, formats), versions = await asyncio.gather(
        shop_settings(request, access), _versions(access, kind)
    )
    now = console_of(request).now()
    if versions:
        versions = await _with_publishers(request, access, versions)
    current = None if versions is None else in_force(versions, now)
    latest = max(versions, key=lambda v: v["version"]) if versions else None
    if editing is None and latest is not None:
        editing = Editing(toml=latest["toml"], base=latest["version"])
    fields = [] if editing is None else forms.form_fields(kind, editing.toml)
    if editing is not None:
        # The console's own messages in the reader's language; the shops API's pass unchanged.
        words = translations(reader_language(request))
        editing.errors = {p: [words.gettext(m) for m in ms] for p, ms in editing.errors.items()}
    invalid = [] if editing is None else [f.path for f in fields if f.path in editing.errors]
    context = {
        "access": access,
        "shop": shop,
        "kind": kind,
        "versions": None if versions is None else list(reversed(versions)),
        "current": current,
        "now": now,
        "editing": editing,
        "fields": fields,
        "sections": _sections(fields),
        "first_invalid": invalid[0] if invalid else None,
        "refused": refused,
        "published": request.query_params.get("published"),
        "rolled_back": request.query_params.get("done") == "rollback",
    }
    return render(
        request,
        "programme_kind.html",
        context,
        formats=formats,
        headers=server_timing(access),
        status_code=status_code,
    )


CONSOLE_ACTOR: Final = re.compile(r" for console:([A-Za-z0-9_-]+)$")


async def _with_publishers(
    request: Request, access: ShopAccess, versions: list[JsonObject]
) -> list[JsonObject]:
    """Each version with `publisher`: the name of the shop's staff member who published it
    through the console, else None (a key, the command line, someone no longer on the staff)."""
    async with console_of(request).pool.acquire() as conn:
        names = {m.user_id: m.name for m in await accounts.members(conn, access.shop)}
    found = [CONSOLE_ACTOR.search(str(v["published_by"])) for v in versions]
    return [
        {**v, "publisher": names.get(match.group(1)) if match else None}
        for v, match in zip(versions, found, strict=True)
    ]


def _sections(fields: list[forms.FieldSpec]) -> list[tuple[str, list[forms.FieldSpec]]]:
    sections: dict[str, list[forms.FieldSpec]] = {}
    for spec in fields:
        sections.setdefault(spec.section, []).append(spec)
    return list(sections.items())


@router.get("/shops/{shop}/programme/{kind}/versions/{version}")
async def show_version(
    request: Request, access: Viewer, kind: KindPath, version: VersionPath
) -> Response:
    (shop, formats), (shown, previous) = await asyncio.gather(
        shop_settings(request, access),
        asyncio.gather(_version(access, kind, version), _version(access, kind, version - 1)),
    )
    context = {
        "access": access,
        "shop": shop,
        "kind": kind,
        "number": version,
        "version": shown,
        "changes": _changes(previous, shown),
    }
    status = 404 if shown == "missing" else 200
    return render(
        request,
        "programme_version.html",
        context,
        formats=formats,
        status_code=status,
        headers=server_timing(access),
    )


def _changes(previous: JsonObject | str | None, shown: JsonObject | str | None) -> str | None:
    """The document's lines changed from the version before (a unified diff), when both are
    known."""
    if not isinstance(previous, dict) or not isinstance(shown, dict):
        return None
    lines = difflib.unified_diff(
        str(previous["toml"]).splitlines(),
        str(shown["toml"]).splitlines(),
        f"{previous['version']}",
        f"{shown['version']}",
        lineterm="",
    )
    return "\n".join(lines)


async def _version(access: ShopAccess, kind: str, n: int) -> JsonObject | str | None:
    """The version; "missing" when the shops API has none (or n is 0); None when it does not
    answer."""
    if n < 1:
        return "missing"
    try:
        return with_times([await access.api.version(kind, n)])[0]
    except UpstreamProblem as problem:
        if problem.status == 404:
            return "missing"
        return None
    except UpstreamError:
        return None


@router.post("/shops/{shop}/programme/{kind}/rollback")
async def roll_back(
    request: Request,
    access: Editor,
    kind: KindPath,
    version: Annotated[int, Form(ge=1)],
    reason: Reason,
) -> Response:
    try:
        await access.api.rollback(kind, version, reason)
    except UpstreamError as failed:
        return await kind_page(
            request, access, kind, status_code=_status(failed), refused=said(failed)
        )
    return RedirectResponse(f"/shops/{access.shop}/programme/{kind}?done=rollback", status_code=303)


def said(failed: UpstreamError) -> str:
    if isinstance(failed, UpstreamProblem):
        messages = [f"{e.get('location', '')}: {e.get('message', '')}" for e in failed.errors]
        return "; ".join(messages) or str(failed.detail or failed)
    return "unavailable"


def _status(failed: UpstreamError) -> int:
    if isinstance(failed, UpstreamProblem) and failed.status in (404, 409, 422):
        return failed.status
    return 503
