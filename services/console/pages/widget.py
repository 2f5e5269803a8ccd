"""The Widget page (owners): allowed storefront origins, signing secrets, the snippet and CSP."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from services.console import widget
from services.console.adapters import widget_settings
from services.console.adapters.widget_settings import WidgetSecret
from services.console.auth import ShopAccess, require
from services.console.context import console_of
from services.console.domain.origins import OriginRefused
from services.console.domain.roles import Capability
from services.console.rendering import render

router = APIRouter()

Owner = Annotated[ShopAccess, Depends(require(Capability.MANAGE_WIDGET))]
OriginField = Annotated[str, Form(max_length=300)]


async def _page(
    request: Request,
    access: ShopAccess,
    *,
    made: WidgetSecret | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    console = console_of(request)
    async with console.pool.acquire() as conn:
        origins = await widget_settings.allowed_origins(conn, access.shop)
        secrets = await widget_settings.secrets_in_use(conn, access.shop)
    base = console.settings.console_public_url.rstrip("/")
    context = {
        "access": access,
        "origins": sorted(origins),
        "secrets": secrets,
        "made": made,
        "error": error,
        "script_url": f"{base}/widget/v1/loyalty-widget.js",
        "csp": [f"script-src {base}", f"connect-src {base}", "style-src 'self'"],
    }
    # A new secret is on this answer only: never kept by a cache or the browser's history.
    headers = {"Cache-Control": "no-store"}
    return render(request, "widget.html", context, status_code=status_code, headers=headers)


@router.get("/shops/{shop}/widget")
async def widget_page(request: Request, access: Owner) -> Response:
    return await _page(request, access)


@router.post("/shops/{shop}/widget/origins")
async def add_origin(request: Request, access: Owner, origin: OriginField) -> Response:
    console = console_of(request)
    try:
        await widget.allow_origins(
            console.pool,
            shop_id=access.shop,
            origins=[origin],
            by=access.user.user_id,
            now=console.now(),
        )
    except OriginRefused:
        return await _page(request, access, error="origin", status_code=422)
    return RedirectResponse(f"/shops/{access.shop}/widget", status_code=303)


@router.post("/shops/{shop}/widget/origins/remove")
async def remove_origin(request: Request, access: Owner, origin: OriginField) -> Response:
    console = console_of(request)
    await widget.remove_origin(
        console.pool, shop_id=access.shop, origin=origin, by=access.user.user_id, now=console.now()
    )
    return RedirectResponse(f"/shops/{access.shop}/widget", status_code=303)


@router.post("/shops/{shop}/widget/secrets")
async def make_secret(request: Request, access: Owner) -> Response:
    console = console_of(request)
    made = await widget.make_widget_secret(
        console.pool, shop_id=access.shop, by=access.user.user_id, now=console.now()
    )
    return await _page(request, access, made=made, status_code=201)


@router.post("/shops/{shop}/widget/secrets/{kid}/revoke")
async def revoke_secret(
    request: Request, access: Owner, kid: Annotated[str, Path(max_length=32)]
) -> Response:
    console = console_of(request)
    async with console.pool.acquire() as conn:
        await widget_settings.revoke_secret(conn, shop_id=access.shop, kid=kid, now=console.now())
    return RedirectResponse(f"/shops/{access.shop}/widget", status_code=303)
