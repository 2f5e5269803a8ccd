"""The customers pages: search (notify's, diacritics-insensitive; an id notify does not know is
tried on earn's balance) and one customer's page, from seven calls made at once."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response

from services.console.adapters.upstream import JsonObject, UpstreamError
from services.console.auth import NotFound, ShopAccess, require
from services.console.customer_panels import customer_panels, progress_of
from services.console.domain.roles import Capability
from services.console.formats import Formats
from services.console.pages.shops import server_timing, shop_settings
from services.console.rendering import render

router = APIRouter()

Viewer = Annotated[ShopAccess, Depends(require(Capability.VIEW))]
# What the services accept as a customer id: printable ASCII without spaces.
CUSTOMER_ID: Final = r"^[!-~]{1,128}$"
CustomerPath = Annotated[str, Path(pattern=CUSTOMER_ID)]
Cursor = Annotated[str | None, Query(max_length=200, pattern=r"^[!-~]+$")]
_AN_ID: Final = re.compile(CUSTOMER_ID)


async def _search(access: ShopAccess, q: str) -> list[JsonObject] | None:
    """Notify's matches; when it has none and `q` could be an id, the customer earn knows
    by that id (one who never signed up). None when neither answers."""
    try:
        items: list[JsonObject] | None = list((await access.api.search(q)).get("items") or [])
    except UpstreamError:
        items = None
    if items or not _AN_ID.match(q):
        return items
    try:
        balance = await access.api.balance(q)
    except UpstreamError:
        return items
    return [{"customer_id": str(balance.get("customer_id", q))}]


@router.get("/shops/{shop}/customers")
async def customers(
    request: Request,
    access: Viewer,
    q: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    q = q.strip()
    if q:
        (shop, formats), found = await asyncio.gather(
            shop_settings(request, access), _search(access, q)
        )
    else:
        (shop, formats), found = await shop_settings(request, access), []
    context = {"access": access, "shop": shop, "q": q, "found": found}
    return render(
        request, "customers.html", context, formats=formats, headers=server_timing(access)
    )


async def customer_page(
    request: Request,
    access: ShopAccess,
    customer_id: str,
    *,
    ledger_cursor: str | None = None,
    messages_cursor: str | None = None,
    form: Mapping[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """The customer page; `form` carries what an action refused (its name, its errors and the
    values given), shown beside that action's form."""
    (shop, formats), panels = await asyncio.gather(
        shop_settings(request, access),
        customer_panels(
            access.api,
            customer_id,
            ledger_cursor=ledger_cursor,
            messages_cursor=messages_cursor,
        ),
    )
    if panels.unknown:
        raise NotFound
    context = {
        "access": access,
        "shop": shop,
        "customer_id": customer_id,
        "panels": panels,
        "progress": progress_of(panels.progress.data),
        "ledger_cursor": ledger_cursor,
        "messages_cursor": messages_cursor,
        # Rendered into each action's form: a double submit sends one key, so one effect.
        "action_key": str(uuid.uuid4()),
        "form": form or {},
        "done": request.query_params.get("done"),
    }
    return render(
        request,
        "customer.html",
        context,
        formats=formats or Formats(),
        status_code=status_code,
        headers=server_timing(access),
    )


@router.get("/shops/{shop}/customers/{customer_id}")
async def customer(
    request: Request,
    access: Viewer,
    customer_id: CustomerPath,
    ledger: Cursor = None,
    messages: Cursor = None,
) -> Response:
    return await customer_page(
        request, access, customer_id, ledger_cursor=ledger, messages_cursor=messages
    )
