"""The tiering HTTP API: a customer's tier, progress and history; manual tiers for operators.

Every route takes X-API-Key and answers for the key's shop (a platform key names it with
X-Shop-Id): the `read` scope for the GET routes, `admin` for manual tiers. A coalition's member
shop answers with the coalition's account, which only the coalition's key (or a platform key
naming the coalition) may give a manual tier. Errors are RFC 9457 problem documents
(application/problem+json).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Path, Query
from starlette.exceptions import HTTPException

from services.tiering.adapters.history import read_history
from services.tiering.domain.rules import Programme
from services.tiering.domain.state import Floor, FloorKind
from services.tiering.handlers import set_floors
from services.tiering.queries import Standing, read_standing
from services.tiering.shops import TierProgrammes, UnknownShop
from services.tiering.views import (
    HistoryView,
    ManualTierRequest,
    ProgressView,
    TierView,
    history_view,
    progress_view,
    tier_view,
)
from shared.callers import Account, CallerAccount, require_own_account, require_scope
from shared.problems import InvalidField, install_problem_handlers, problems
from shared.runtime import Runtime, service_api
from shared.shop_directory import ShopDirectory

CustomerPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[!-~]+$", description="Customer id.")
]

# Module level: FastAPI resolves the (postponed) annotations of route functions here.
READ = [Depends(require_scope("read"))]
ADMIN = [Depends(require_scope("admin"))]
OwnAccount = Annotated[Account, Depends(require_own_account)]


def build_api(runtime: Runtime, *, programmes: TierProgrammes, directory: ShopDirectory) -> FastAPI:
    """The FastAPI app served for the paths the operational routes do not take; callers are
    resolved from `directory` (in memory)."""
    api = service_api(
        "tiering",
        "Tiers of the loyalty programme: standing, progress, history, manual tiers. Every "
        "route needs X-API-Key: the key of a shop (its own customers), or a platform key "
        "that names the shop with X-Shop-Id (the shop `default` when absent).",
    )
    api.state.shop_directory = directory
    api.state.runtime = runtime  # its clock says when a shop's holder is asked for
    schema = runtime.definition.schema

    install_problem_handlers(api, invalid_field="the request breaks a rule of the programme")

    def programme_of(shop_id: str) -> Programme:
        try:
            return programmes.at(shop_id, runtime.clock.now())
        except UnknownShop:
            # A shop without a programme has no customers here: 404, as for an unknown one.
            raise HTTPException(404, f"shop {shop_id!r} has no tier programme") from None

    async def standing(shop_id: str, customer_id: str) -> tuple[Programme, Standing]:
        programme = programme_of(shop_id)
        async with runtime.require_pool().acquire() as conn:
            found = await read_standing(
                conn, schema, programme, (shop_id, customer_id), runtime.clock.now()
            )
        if found is None:
            raise HTTPException(404, f"customer {customer_id!r} has no tier yet")
        return programme, found

    async def tier_of(shop_id: str, customer_id: str) -> TierView:
        programme, found = await standing(shop_id, customer_id)
        now = runtime.clock.now()
        return tier_view(
            programme,
            found.state,
            found.floors,
            found.qualifying(programme, now),
            found.grace_ends_at(programme),
        )

    @api.get(
        "/v1/customers/{customer_id}/tier",
        responses=problems(401, 403, 404, 422, 503),
        dependencies=READ,
    )
    async def get_tier(customer_id: CustomerPath, account: CallerAccount) -> TierView:
        """The tier in force, its benefits and multiplier, floors, and what the window counts
        (a coalition member's: the coalition's). Needs the `read` scope."""
        return await tier_of(account.holder_id, customer_id)

    @api.get(
        "/v1/customers/{customer_id}/progress",
        responses=problems(401, 403, 404, 422, 503),
        dependencies=READ,
    )
    async def get_progress(customer_id: CustomerPath, account: CallerAccount) -> ProgressView:
        """How much more reaches the next tier (and by when), and what keeps the current one.
        Needs the `read` scope."""
        programme, found = await standing(account.holder_id, customer_id)
        return progress_view(programme, found.state, found.progress(programme, runtime.clock.now()))

    @api.get(
        "/v1/customers/{customer_id}/tier-history",
        responses=problems(401, 403, 404, 422, 503),
        dependencies=READ,
    )
    async def get_history(
        customer_id: CustomerPath,
        account: CallerAccount,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> HistoryView:
        """Every change of the tier in force, newest first. Needs the `read` scope."""
        shop_id = account.holder_id
        await standing(shop_id, customer_id)
        async with runtime.require_pool().acquire() as conn:
            entries = await read_history(conn, schema, shop_id, customer_id, limit=limit)
        return history_view(customer_id, entries)

    @api.put(
        "/v1/customers/{customer_id}/manual-tier",
        responses=problems(400, 401, 403, 404, 422, 503),
        dependencies=ADMIN,
    )
    async def put_manual_tier(
        customer_id: CustomerPath, body: ManualTierRequest, account: OwnAccount
    ) -> TierView:
        """Hold a tier at least until `ends_at` (a floor over what qualification gives);
        replaces an earlier manual tier of this customer at the shop. Needs the `admin`
        scope; a coalition member's key gets a 403 `coalition_account`: the account is the
        coalition's."""
        shop_id = account.holder_id
        now = runtime.clock.now()
        programme = programme_of(shop_id)
        starts_at = body.starts_at or now
        if not programme.knows(body.tier):
            known = ", ".join(t.code for t in programme.tiers)
            raise InvalidField("body.tier", f"unknown tier; the programme has {known}")
        if body.ends_at <= max(now, starts_at):
            raise InvalidField("body.ends_at", "must be later than now and than starts_at")
        floor = Floor(FloorKind.MANUAL, "manual", body.tier, starts_at, body.ends_at, body.reason)
        async with runtime.require_pool().acquire() as conn, conn.transaction():
            await set_floors(
                conn,
                [((shop_id, customer_id), floor, now)],
                programmes=programmes,
                schema=schema,
                now=now,
            )
        if runtime.relay is not None:
            runtime.relay.wake()
        return await tier_of(shop_id, customer_id)

    return api
