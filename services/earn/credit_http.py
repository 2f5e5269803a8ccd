"""The store credit part of the earn API: spending credit at checkout, and cancelling spends."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel

from services.earn.adapters.unit_of_work import PostgresUnitOfWork
from services.earn.handlers import SpendCredit, cancel_credit_spend, spend_credit
from services.earn.problems import problems
from services.earn.refusals import NotFound
from services.earn.requests import (
    READ,
    REDEEM,
    CustomerPath,
    IdempotencyKey,
    IdempotentRequests,
    require_key,
)
from services.earn.unit_of_work import UnitOfWork
from services.earn.views import CancelRequest, CreditSpendRequest, CreditSpendView
from shared.callers import CallerAccount, CallerShop
from shared.db import ACQUIRE_TIMEOUT_S

SpendPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[!-~]+$", description="Spend id.")
]


def credit_routes(requests: IdempotentRequests) -> APIRouter:
    """Spending store credit, reading a spend and cancelling it."""
    runtime = requests.runtime
    router = APIRouter(prefix="/v1", tags=["store credit"])

    @router.post(
        "/customers/{customer_id}/store-credit/spend",
        status_code=201,
        response_model=CreditSpendView,
        dependencies=[REDEEM],
        responses=problems(400, 401, 403, 404, 409, 422, 503),
    )
    async def post_spend(
        customer_id: CustomerPath,
        body: CreditSpendRequest,
        idempotency_key: IdempotencyKey = None,
        *,
        account: CallerAccount,
    ) -> Any:
        """Pay with store credit: a `redeemed` store credit entry of the amount. Refused (409)
        when the available credit in the currency does not cover it or is negative. A member
        shop of a coalition spends from the coalition's account."""
        key = require_key(idempotency_key)
        shop_id = account.shop_id
        command = SpendCredit(
            shop_id,
            customer_id,
            body.currency,
            body.amount_minor(),
            body.order_id,
            account.holder_id,
        )

        async def action(uow: UnitOfWork) -> tuple[int, BaseModel]:
            done = await spend_credit(uow, command, now=runtime.clock.now())
            return 201, CreditSpendView.of(done)

        asked = {
            "customer_id": customer_id,
            "currency": command.currency,
            "amount_minor": command.amount_minor,
            "order_id": command.order_id,
        }
        return await requests.run(shop_id, "credit-spend", key, asked, action)

    @router.get(
        "/store-credit/spends/{spend_id}",
        dependencies=[READ],
        responses=problems(401, 403, 404, 422, 503),
    )
    async def get_spend(spend_id: SpendPath, *, shop_id: CallerShop) -> CreditSpendView:
        """A store credit spend of the shop, and whether it was cancelled."""
        async with runtime.require_pool().acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            found = await PostgresUnitOfWork(conn).credit_spends.get(shop_id, spend_id)
        if found is None:
            raise NotFound(f"no store credit spend {spend_id!r}", code="unknown_spend")
        return CreditSpendView.of(found)

    @router.post(
        "/store-credit/spends/{spend_id}/cancel",
        dependencies=[REDEEM],
        responses=problems(400, 401, 403, 404, 422, 503),
    )
    async def post_cancel_spend(
        spend_id: SpendPath,
        body: CancelRequest | None = None,
        *,
        shop_id: CallerShop,
    ) -> CreditSpendView:
        """Give the credit back (a `restored` entry), once: cancelling again answers the
        cancelled spend and changes nothing."""
        reason = (body or CancelRequest()).reason
        pool = runtime.require_pool()
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            cancelled = await cancel_credit_spend(
                PostgresUnitOfWork(conn), shop_id, spend_id, reason=reason, now=runtime.clock.now()
            )
        if runtime.relay is not None:
            runtime.relay.wake()
        return CreditSpendView.of(cancelled)

    return router
