"""The shop's staff and their roles (the owner's page)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from services.console.adapters import accounts
from services.console.auth import ShopAccess, require
from services.console.context import console_of
from services.console.domain.roles import Capability
from services.console.rendering import render

router = APIRouter()

Owner = Annotated[ShopAccess, Depends(require(Capability.MANAGE_STAFF))]


@router.get("/shops/{shop}/staff")
async def staff(request: Request, access: Owner) -> Response:
    async with console_of(request).pool.acquire() as conn:
        members = await accounts.members(conn, access.shop)
    return render(request, "staff.html", {"access": access, "members": members})
