"""The operators' part of the earn API: adjustments and bulk grants, for keys with the admin
scope (LOYALTY_ADMIN_API_KEY is a platform one)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from services.earn.handlers import AdjustPoints, adjust_points, grant_points_in_bulk
from services.earn.problems import problems
from services.earn.requests import CustomerPath, IdempotencyKey, IdempotentRequests, require_key
from services.earn.unit_of_work import UnitOfWork
from services.earn.views import (
    AdjustmentRequest,
    BulkGrantReport,
    BulkGrantRequest,
    GrantOutcome,
    WrittenEntryView,
)
from shared.callers import CallerShop, require_own_account, require_scope


def admin_routes(requests: IdempotentRequests) -> APIRouter:
    """Routes under /v1/admin; every one needs a key with the admin scope, and moves a
    balance, which a coalition's member shop may not (403 `coalition_account`): the account
    is the coalition's, whose key (or a platform key naming it) may."""
    admin = Depends(require_scope("admin"))
    own = Depends(require_own_account)
    router = APIRouter(prefix="/v1/admin", dependencies=[admin, own], tags=["admin"])
    clock = requests.runtime.clock

    @router.post(
        "/customers/{customer_id}/adjustments",
        status_code=201,
        response_model=WrittenEntryView,
        responses=problems(400, 401, 403, 404, 409, 422, 503),
    )
    async def post_adjustment(
        customer_id: CustomerPath,
        body: AdjustmentRequest,
        idempotency_key: IdempotencyKey = None,
        *,
        shop_id: CallerShop,
    ) -> Any:
        """Grant or deduct points with a reason (an `adjusted` entry whose id derives from the
        Idempotency-Key). A deduction below zero is refused (409) unless `force`."""
        key = require_key(idempotency_key)
        command = AdjustPoints(
            shop_id, f"adjust:{key}", customer_id, body.points, body.reason, body.force
        )

        async def action(uow: UnitOfWork) -> tuple[int, BaseModel]:
            w = await adjust_points(uow, command, now=clock.now())
            return 201, WrittenEntryView(
                entry_id=w.entry.entry_id,
                customer_id=customer_id,
                delta=w.entry.delta,
                balance_after=w.balance_after,
            )

        asked = {"customer_id": customer_id, **body.model_dump(mode="json")}
        return await requests.run(shop_id, "adjust", key, asked, action)

    @router.post(
        "/bulk-grants",
        response_model=BulkGrantReport,
        responses=problems(400, 401, 403, 404, 409, 422, 503),
    )
    async def post_bulk_grant(body: BulkGrantRequest, *, shop_id: CallerShop) -> Any:
        """Credit many customers at once (up to 1000), idempotent by `batch_id`: a retried
        batch answers its first report and credits nobody twice."""
        body.check_one_per_customer()

        async def action(uow: UnitOfWork) -> tuple[int, BaseModel]:
            grants = [(g.customer_id, g.points) for g in body.grants]
            written = await grant_points_in_bulk(
                uow, shop_id, body.batch_id, grants, reason=body.reason, now=clock.now()
            )
            results = [
                GrantOutcome(
                    customer_id=w.entry.customer_id,
                    status="granted",
                    entry_id=w.entry.entry_id,
                    points=w.entry.delta,
                    balance_after=w.balance_after,
                )
                for w in written
            ]
            return 200, BulkGrantReport(
                batch_id=body.batch_id,
                granted=len(results),
                points=sum(r.points for r in results),
                results=results,
            )

        asked = body.model_dump(mode="json")
        return await requests.run(shop_id, "bulk-grant", body.batch_id, asked, action)

    return router
