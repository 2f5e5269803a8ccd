"""The programme editor's one form: the draft (the form applied to a version, or the TOML as
written), checked and previewed through the shops API, and published."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.console.adapters.upstream import UpstreamError, UpstreamProblem
from services.console.auth import ShopAccess
from services.console.context import console_of
from services.console.domain import programme_forms as forms
from services.console.domain.programme_forms import N_
from services.console.formats import Formats
from services.console.pages.programme import Editing, Editor, KindPath, kind_page, said
from services.console.pages.shops import shop_settings
from services.console.rendering import reader_language, translations

router = APIRouter()


@router.post("/shops/{shop}/programme/{kind}")
async def edit(request: Request, access: Editor, kind: KindPath) -> Response:
    """The editor's one form: `intent` validate, preview or publish; `source` form or toml."""
    posted = await request.form()
    values = {k: v for k, v in posted.multi_items() if isinstance(v, str)}
    intent = values.get("intent", "validate")
    editing = await _draft(access, kind, values)
    if not editing.errors and not editing.general:
        await _check(access, kind, editing)
    if intent == "preview" and kind == "earn" and not editing.errors and not editing.general:
        await _preview(request, access, editing, values)
    if intent == "publish" and editing.valid:
        published = await _publish(request, access, kind, editing, values)
        if published is not None:
            target = f"/shops/{access.shop}/programme/{kind}?published={published}"
            return RedirectResponse(target, status_code=303)
    failed = bool(editing.errors or editing.general)
    return await kind_page(request, access, kind, editing, status_code=422 if failed else 200)


async def _draft(access: ShopAccess, kind: str, values: dict[str, str]) -> Editing:
    """The draft: the TOML as written (the editor), or the form applied to the version the
    form was made from (comments and order kept)."""
    base = int(values["base"]) if values.get("base", "").isdigit() else None
    if values.get("source") == "toml" or base is None:
        return Editing(toml=values.get("toml", ""), base=base)
    try:
        document = str((await access.api.version(kind, base))["toml"])
    except UpstreamError as failed:
        return Editing(toml=values.get("toml", ""), base=base, general=[said(failed)])
    fields = {k: v for k, v in values.items() if k not in _CONTROLS}
    try:
        return Editing(toml=forms.apply_form(kind, document, fields), base=base)
    except forms.FormRefused as refused:
        editing = Editing(toml=document, base=base, entered=fields)
        for error in refused.errors:
            editing.errors.setdefault(error.path, []).append(error.message)
        return editing


_CONTROLS: Final = frozenset(
    {"csrf_token", "intent", "source", "base", "toml", "effective_from", "reason"}
    | {"sample_currency", "sample_category", "sample_amount"}
)


async def _check(access: ShopAccess, kind: str, editing: Editing) -> None:
    try:
        await access.api.validate(kind, editing.toml)
    except UpstreamError as failed:
        _errors_into(kind, editing, failed)
        return
    editing.valid = True


def _errors_into(kind: str, editing: Editing, failed: UpstreamError) -> None:
    """A 422's errors beside the fields they name; the others above the editor."""
    if not isinstance(failed, UpstreamProblem) or not failed.errors:
        editing.general.append(said(failed))
        return
    fields = {f.path for f in forms.form_fields(kind, editing.toml)}
    for error in failed.errors:
        path = forms.field_of(kind, str(error.get("location", "")))
        message = str(error.get("message", ""))
        if path in fields:
            editing.errors.setdefault(path, []).append(message)
        else:
            editing.general.append(f"{path}: {message}" if path else message)


async def _preview(
    request: Request, access: ShopAccess, editing: Editing, values: dict[str, str]
) -> None:
    editing.sample = {
        "currency": values.get("sample_currency", "").strip().upper() or "VND",
        "category": values.get("sample_category", "").strip() or "sample",
        "amount": values.get("sample_amount", "").strip() or "1000000",
    }
    order: dict[str, Any] = {
        "currency": editing.sample["currency"],
        "lines": [
            {
                "sku": "sample",
                "category": editing.sample["category"],
                "quantity": 1,
                "unit_price": editing.sample["amount"],
            }
        ],
    }
    try:
        editing.preview = await access.api.preview(
            editing.toml, order, paid_at=console_of(request).now()
        )
    except UpstreamError as failed:
        editing.general.append(said(failed))


async def _publish(
    request: Request, access: ShopAccess, kind: str, editing: Editing, values: dict[str, str]
) -> int | None:
    reason = values.get("reason", "").strip()
    if not reason:
        editing.errors.setdefault("reason", []).append(N_("a reason is needed"))
        return None
    try:
        starts = await _effective_from(request, access, values.get("effective_from", ""))
    except ValueError:
        editing.errors.setdefault("effective_from", []).append(N_("a date and time is needed"))
        return None
    if await _newer_than_base(request, access, kind, editing):
        return None
    try:
        published = await access.api.publish(kind, editing.toml, starts, reason[:255])
    except UpstreamError as failed:
        _errors_into(kind, editing, failed)
        return None
    return int(published["version"])


STALE: Final = N_(
    "Version %(n)s was published after this draft was begun: reload the page and start from it."
)


async def _newer_than_base(
    request: Request, access: ShopAccess, kind: str, editing: Editing
) -> bool:
    """A draft begun from a version that is no longer the latest would undo what was published
    since: it is refused (said above the editor) rather than published."""
    if editing.base is None:
        return False
    try:
        latest = max(int(v["version"]) for v in await access.api.versions(kind))
    except (UpstreamError, ValueError):
        return False  # the publication itself will say what is wrong
    if latest <= editing.base:
        return False
    words = translations(reader_language(request))
    editing.general.append(words.gettext(STALE) % {"n": latest})
    return True


async def _effective_from(request: Request, access: ShopAccess, given: str) -> datetime | None:
    """A `datetime-local` value on the shop's wall clock; empty: as soon as the shops API
    allows (its lead)."""
    if not given.strip():
        return None
    shop, _ = await shop_settings(request, access)
    zone = ZoneInfo(str(shop["time_zone"])) if shop else ZoneInfo(Formats().time_zone)
    return datetime.fromisoformat(given.strip()).replace(tzinfo=zone)
