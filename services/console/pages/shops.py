"""The shop picker, and the shop's settings and Server-Timing every shop page uses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response

from services.console.adapters import accounts
from services.console.adapters.upstream import JsonObject, UpstreamError
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


async def shop_settings(request: Request, access: ShopAccess) -> tuple[JsonObject | None, Formats]:
    """The shop as the shops API describes it, and the formats of its locale and time zone;
    None and the default formats when it does not answer (the page says so)."""
    language = reader_language(request)
    try:
        shop = await access.api.shop()
    except UpstreamError:
        return None, Formats(language=language)
    return shop, Formats(language, str(shop["locale"]), str(shop["time_zone"]))


def server_timing(access: ShopAccess) -> dict[str, str]:
    """How long the page waited for each service (Server-Timing, in milliseconds)."""
    return access.api.server_timing()
