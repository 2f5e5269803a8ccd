"""The messages pages: notify's templates, each previewed in Vietnamese and English with sample
data, and a test send of one to the asker's own address (message.test_requested)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.console import sample_mail
from services.console.adapters.upstream import JsonObject, UpstreamError
from services.console.auth import NotFound, ShopAccess, require
from services.console.context import console_of
from services.console.domain.roles import Capability
from services.console.pages.shops import server_timing, shop_settings
from services.console.rendering import render

router = APIRouter()

Previewer = Annotated[ShopAccess, Depends(require(Capability.PREVIEW_MESSAGES))]
Tester = Annotated[ShopAccess, Depends(require(Capability.TEST_SEND))]
TemplatePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
Language = Literal["vi", "en"]
PREVIEW_LANGUAGES: Final = ("vi", "en")
# An email is its own document with inline styles, shown in a sandboxed frame of the console's
# page: it gets a policy of its own, no script at all, and may be framed by the console only.
PREVIEW_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'self'; sandbox"
)


async def _templates(access: ShopAccess) -> list[JsonObject] | None:
    """Notify's templates; None when notify does not answer, or has no such API (404)."""
    try:
        found = await access.api.templates()
    except UpstreamError:
        return None
    return [template_row(t) for t in found if isinstance(t.get("name"), str)]


def template_row(template: JsonObject) -> JsonObject:
    """A template as the list shows it: its triggers and channels as lists, whether notify
    names one (`trigger`) or several (`triggers`)."""

    def many(plural: str, singular: str) -> list[str]:
        value = template.get(plural, template.get(singular))
        values = value if isinstance(value, list) else [] if value is None else [value]
        return [str(v) for v in values]

    return {
        "name": template["name"],
        "triggers": many("triggers", "trigger"),
        "channels": many("channels", "channel"),
        "category": str(template.get("category", "")),
        "languages": many("languages", "language"),
    }


@router.get("/shops/{shop}/messages")
async def messages(request: Request, access: Previewer) -> Response:
    (shop, formats), templates = await asyncio.gather(
        shop_settings(request, access), _templates(access)
    )
    context = {"access": access, "shop": shop, "templates": templates}
    return render(request, "messages.html", context, formats=formats, headers=server_timing(access))


async def _preview(access: ShopAccess, template: str, language: str) -> JsonObject | None:
    try:
        return await access.api.template_preview(template, language)
    except UpstreamError:
        return None


@router.get("/shops/{shop}/messages/{template}")
async def message(request: Request, access: Previewer, template: TemplatePath) -> Response:
    (shop, formats), previews = await asyncio.gather(
        shop_settings(request, access),
        asyncio.gather(*(_preview(access, template, language) for language in PREVIEW_LANGUAGES)),
    )
    context = {
        "access": access,
        "shop": shop,
        "template": template,
        "previews": list(zip(PREVIEW_LANGUAGES, previews, strict=True)),
        "sent": request.query_params.get("sent"),
    }
    return render(request, "message.html", context, formats=formats, headers=server_timing(access))


@router.get("/shops/{shop}/messages/{template}/{language}/preview.html")
async def preview_html(
    access: Previewer, template: TemplatePath, language: Annotated[Language, Path()]
) -> Response:
    """The email's HTML as notify renders it with sample data, for the page's iframe."""
    preview = await _preview(access, template, language)
    if preview is None or not isinstance(preview.get("html"), str):
        raise NotFound
    headers = {"Content-Security-Policy": PREVIEW_POLICY, "X-Frame-Options": "SAMEORIGIN"}
    return HTMLResponse(str(preview["html"]), headers=headers)


@router.post("/shops/{shop}/messages/{template}/test-send")
async def test_send(
    request: Request,
    access: Tester,
    template: TemplatePath,
    language: Annotated[Language, Form()] = "vi",
) -> Response:
    """message.test_requested for notify to mail the template to the asker's own address."""
    await sample_mail.request_test_send(
        console_of(request).pool,
        shop_id=access.shop,
        user=access.user,
        template=template,
        locale=language,
        now=console_of(request).now(),
    )
    target = f"/shops/{access.shop}/messages/{template}?sent={language}"
    return RedirectResponse(target, status_code=303)
