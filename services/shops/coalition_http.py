"""The coalition routes of the shops admin API: coalitions, their members, memberships.

Only a platform key creates coalitions and changes memberships (joining is the operator's
commercial decision); a coalition's own key reads its coalition; any other key gets a 404.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import ConfigDict

from services.shops import coalitions
from services.shops.access import ShopPath, Who, change_by, platform_only, reach
from services.shops.bodies import CoalitionChange, NewCoalition
from services.shops.records import Member, Membership, Shop
from shared.problems import problems
from shared.runtime import Runtime


class Coalition(Shop):
    """A coalition, with the shops in it by their latest membership version."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    members: list[Member]


def coalition_routes(api: FastAPI, runtime: Runtime) -> None:
    @api.post("/v1/coalitions", status_code=201, responses=problems(400, 401, 403, 409, 422, 503))
    async def create_coalition(body: NewCoalition, who: Who) -> Shop:
        """Create a coalition from a starter template (a platform key): its programmes, which
        its members' shared accounts run, start at version 1."""
        platform_only(who, "creates coalitions")
        async with runtime.require_pool().acquire() as conn:
            return await coalitions.create_coalition(
                conn,
                change_by(who, runtime),
                coalition_id=body.coalition_id,
                template=body.template,
                name=body.name,
            )

    @api.get("/v1/coalitions", responses=problems(401, 403, 503))
    async def list_coalitions(who: Who) -> list[Shop]:
        """Every coalition for a platform key; its own coalition for a coalition's key."""
        async with runtime.require_pool().acquire() as conn:
            found = await coalitions.list_coalitions(conn)
        return [c for c in found if who.shop_id in {None, c.shop_id}]

    @api.get("/v1/coalitions/{coalition}", responses=problems(401, 403, 404, 422, 503))
    async def get_coalition(coalition: ShopPath, who: Who) -> Coalition:
        """A coalition and its members, each since when it is in by its latest version."""
        reach(who, coalition)
        async with runtime.require_pool().acquire() as conn:
            found = await coalitions.find_coalition(conn, coalition)
            members = await coalitions.members(conn, coalition)
        return Coalition(**found.model_dump(), members=members)

    @api.put("/v1/shops/{shop}/coalition", responses=problems(400, 401, 403, 404, 422, 503))
    async def set_coalition(shop: ShopPath, body: CoalitionChange, who: Who) -> Membership:
        """Join a coalition, or leave one (`coalition_id` null), from `effective_from`: a new
        membership version (a platform key).

        Refused with a 422 naming the field: `effective_from` earlier than the lead after now,
        or than the shop's previous version; a coalition in `shop`; `coalition_id` naming no
        coalition, or one whose latest earn version has no rate for the shop's currency; the
        shop's coalition already; leaving without the shop's own earn and tiers versions."""
        platform_only(who, "changes a shop's coalition")
        async with runtime.require_pool().acquire() as conn:
            return await coalitions.set_coalition(
                conn,
                change_by(who, runtime),
                shop_id=shop,
                coalition_id=body.coalition_id,
                effective_from=body.effective_from,
                reason=body.reason,
            )

    @api.get("/v1/shops/{shop}/coalition/versions", responses=problems(401, 403, 404, 422, 503))
    async def list_memberships(shop: ShopPath, who: Who) -> list[Membership]:
        """Every membership version of the shop, oldest first."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await coalitions.memberships_of(conn, shop)
