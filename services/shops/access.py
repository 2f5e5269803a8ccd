"""Who calls the shops admin API, and what their key reaches."""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import Depends, Path, Request
from starlette.exceptions import HTTPException

from services.shops import handlers
from services.shops.bodies import Caller
from services.shops.refusals import NotFound
from services.shops.settings import ShopsSettings
from shared.api_keys import GivenKey
from shared.events.fields import ShopId
from shared.runtime import Runtime

ShopPath = Annotated[ShopId, Path(description="The shop's id.")]
# Who a platform key acts for (`console:u_…`): said by the caller, so only a platform key,
# trusted with every shop anyway, may say it; from any other key it is ignored.
ON_BEHALF_OF: Final = re.compile(r"[a-z]+:[A-Za-z0-9_-]{1,64}")


async def caller(request: Request, given: GivenKey) -> Caller:
    """The key's holder: 401 without a key or with an unknown or revoked one, 403 with a key
    of another scope than admin or platform."""
    if given is None:
        raise HTTPException(401, "the X-API-Key header is required")
    runtime: Runtime = request.app.state.runtime
    async with runtime.require_pool().acquire() as conn:
        key = await handlers.key_of(conn, given)
    if key is None:
        raise HTTPException(401, "the X-API-Key header is not a valid key")
    if not {"admin", "platform"} & set(key.scopes):
        raise HTTPException(403, "the key has no admin scope")
    on_behalf_of = request.headers.get("x-on-behalf-of")
    honoured = "platform" in key.scopes and bool(
        on_behalf_of and ON_BEHALF_OF.fullmatch(on_behalf_of)
    )
    return Caller(
        prefix=key.prefix,
        shop_id=key.shop_id,
        scopes=key.scopes,
        on_behalf_of=on_behalf_of if honoured else None,
    )


Who = Annotated[Caller, Depends(caller)]


def reach(who: Caller, shop_id: str) -> None:
    """A shop's key reaches its own shop only: another is a 404, as if it did not exist."""
    if who.shop_id is not None and who.shop_id != shop_id:
        raise NotFound(f"no shop {shop_id!r}")


def platform_only(who: Caller, what: str) -> None:
    """Only a platform key does `what` ("creates shops"): a shop's key is refused (403)."""
    if who.shop_id is not None:
        raise HTTPException(403, f"only a platform key {what}")


def change_by(who: Caller, runtime: Runtime) -> handlers.Change:
    settings = runtime.settings
    lead = settings.effective_lead if isinstance(settings, ShopsSettings) else handlers.DEFAULT_LEAD
    # The audit and published_by say `<key prefix> for console:u_…` when a platform key acts for
    # someone.
    actor = who.prefix if who.on_behalf_of is None else f"{who.prefix} for {who.on_behalf_of}"
    return handlers.Change(actor=actor, now=runtime.clock.now(), lead=lead)
