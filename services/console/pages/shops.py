"""The shop picker and a shop's home page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.console.adapters import accounts
from services.console.adapters.upstream import UpstreamError
from services.console.auth import CurrentSession, ShopAccess, require
from services.console.context import console_of
from services.console.domain.roles import Capability
from services.console.formats import Formats
from services.console.rendering import reader_language, render

router = APIRouter()

SHOP_ID = "^[a-z0-9][a-z0-9-]{0,63}$"

Viewer = Annotated[ShopAccess, Depends(require(Capability.VIEW))]


@router.get("/shops")
async def shop_picker(request: Request, session: CurrentSession) -> Response:
    """The shops the user is staff of; a platform operator may also name any shop."""
    async with console_of(request).pool.acquire() as conn:
        memberships = await accounts.memberships(conn, session.user.user_id)
    return render(request, "shops.html", {"memberships": memberships})


@router.get("/shops/go")
async def go_to_shop(
    session: CurrentSession, shop: Annotated[str, Query(pattern=SHOP_ID)]
) -> Response:
    """The operator's form naming any shop; for anyone else the shop's page answers 404."""
    return RedirectResponse(f"/shops/{shop}/", status_code=303)


@router.get("/shops/{shop}/")
async def home(request: Request, access: Viewer) -> Response:
    formats, unavailable = await shop_formats(request, access)
    return render(
        request,
        "home.html",
        {"access": access, "shop": access.shop, "unavailable": unavailable},
        formats=formats,
    )


async def shop_formats(request: Request, access: ShopAccess) -> tuple[Formats, bool]:
    """The shop's locale and time zone from the shops API; the defaults when it does not
    answer (the page says so)."""
    language = reader_language(request)
    try:
        shop = await access.api.shop()
    except UpstreamError:
        return Formats(language=language), True
    return Formats(language, str(shop["locale"]), str(shop["time_zone"])), False
