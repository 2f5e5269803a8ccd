"""What staff may do on a customer's page: adjust points, hold a tier until a date, resend a
message, unsubscribe a channel. Each is the owning service's API; a refusal (422, 409) is
shown beside its form on the customer page, a success leads back to the page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from services.console.adapters import accounts
from services.console.adapters.upstream import UpstreamProblem, UpstreamUnavailable
from services.console.auth import ShopAccess, require
from services.console.context import console_of
from services.console.domain.roles import Capability
from services.console.pages.customers import CustomerPath, customer_page
from services.console.pages.shops import shop_settings

router = APIRouter()

Actor = Annotated[ShopAccess, Depends(require(Capability.ACT_ON_CUSTOMERS))]
Key = Annotated[str, Form(pattern=r"^[!-~]{1,200}$")]
Reason = Annotated[str, Form(min_length=1, max_length=255)]
# The services' body fields, as the forms name them.
FIELDS: Final = {"points": "points", "force": "force", "tier": "tier", "ends_at": "ends_on"}


def refusal(action: str, error: UpstreamProblem | UpstreamUnavailable) -> dict[str, Any]:
    """What the page shows beside the form: the fields at fault, and what has no field."""
    if isinstance(error, UpstreamUnavailable):
        return {"name": action, "errors": {}, "general": [], "unavailable": True}
    errors: dict[str, list[str]] = {}
    general: list[str] = []
    for item in error.errors:
        field = FIELDS.get(str(item.get("location", "")).rsplit(".", 1)[-1], "reason")
        errors.setdefault(field, []).append(str(item.get("message", "")))
    if not errors:
        general.append(error.detail or error.code or str(error.status))
    return {"name": action, "errors": errors, "general": general, "status": error.status}


async def act(
    request: Request,
    access: ShopAccess,
    customer_id: str,
    *,
    action: str,
    call: Awaitable[Any],
    values: dict[str, str],
) -> Response:
    """Run the call; on success log it (ids only) and go back to the page, else show the page
    again with the refusal beside the action's form."""
    try:
        await call
    except (UpstreamProblem, UpstreamUnavailable) as error:
        form = refusal(action, error) | {"values": values}
        status = error.status if isinstance(error, UpstreamProblem) else 503
        return await customer_page(request, access, customer_id, form=form, status_code=status)
    console = console_of(request)
    async with console.pool.acquire() as conn:
        await accounts.record_action(
            conn,
            at=console.now(),
            user_id=access.user.user_id,
            shop_id=access.shop,
            action=f"customer_{action}",
            target=customer_id,
        )
    target = f"/shops/{access.shop}/customers/{customer_id}?done={action}"
    return RedirectResponse(target, status_code=303)


@router.post("/shops/{shop}/customers/{customer_id}/adjustments")
async def adjust(
    request: Request,
    access: Actor,
    customer_id: CustomerPath,
    *,
    points: Annotated[int, Form(ge=-(10**9), le=10**9)],
    reason: Reason,
    idempotency_key: Key,
    force: Annotated[bool, Form()] = False,
) -> Response:
    """Points granted (positive) or deducted (negative); the key rendered into the form makes
    a double submit one adjustment (earn answers the second with the first's result)."""
    return await act(
        request,
        access,
        customer_id,
        action="adjusted",
        call=access.api.adjust(customer_id, points, reason, force, idempotency_key),
        values={"points": str(points), "reason": reason},
    )


@router.post("/shops/{shop}/customers/{customer_id}/manual-tier")
async def manual_tier(
    request: Request,
    access: Actor,
    customer_id: CustomerPath,
    *,
    tier: Annotated[str, Form(min_length=1, max_length=64)],
    ends_on: Annotated[dt.date, Form()],
    reason: Reason,
) -> Response:
    """The tier held until the end of `ends_on` on the shop's wall clock."""
    _shop, formats = await shop_settings(request, access)
    next_day = dt.datetime.combine(ends_on + dt.timedelta(days=1), dt.time())
    ends_at = next_day.replace(tzinfo=ZoneInfo(formats.time_zone))
    return await act(
        request,
        access,
        customer_id,
        action="tier",
        call=access.api.manual_tier(customer_id, tier, ends_at, reason),
        values={"tier": tier, "ends_on": ends_on.isoformat(), "reason": reason},
    )


@router.post("/shops/{shop}/customers/{customer_id}/messages/{message_id}/resend")
async def resend(
    request: Request,
    access: Actor,
    customer_id: CustomerPath,
    message_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    idempotency_key: Key,
) -> Response:
    """The message planned again, due now; notify's usual checks (consent, quiet hours, the
    cap) still apply, and its outcome shows in the list."""
    return await act(
        request,
        access,
        customer_id,
        action="resent",
        call=access.api.resend(customer_id, str(message_id), idempotency_key),
        values={},
    )


@router.post("/shops/{shop}/customers/{customer_id}/unsubscribe")
async def unsubscribe(
    request: Request,
    access: Actor,
    customer_id: CustomerPath,
    channel: Annotated[Literal["email", "push"], Form()],
) -> Response:
    return await act(
        request,
        access,
        customer_id,
        action="unsubscribed",
        call=access.api.unsubscribe(customer_id, channel),
        values={"channel": channel},
    )
