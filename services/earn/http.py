"""The earn HTTP API: balances, ledger, rewards, redemptions and store credit spends;
adjustments for operators.

Errors are RFC 9457 problem documents (services/earn/problems.py). Redemptions, store credit
spends and adjustments take an Idempotency-Key header; bulk grants are idempotent by their
batch id.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, FastAPI, Path, Query
from pydantic import BaseModel

from services.earn.adapters.accounts import known_customer, read_account, read_credit
from services.earn.adapters.ledger import read_entries
from services.earn.adapters.unit_of_work import PostgresUnitOfWork
from services.earn.admin_http import admin_routes
from services.earn.credit_http import credit_routes
from services.earn.handlers import RedeemReward, cancel_redemption, redeem_reward
from services.earn.problems import install_handlers, problems
from services.earn.programme import Programme
from services.earn.programme_book import ProgrammeBook, UnknownShop
from services.earn.refusals import NotFound
from services.earn.requests import (
    READ,
    REDEEM,
    CustomerPath,
    IdempotencyKey,
    IdempotentRequests,
    document_required_keys,
    require_key,
)
from services.earn.unit_of_work import UnitOfWork
from services.earn.views import (
    BalanceView,
    CancelRequest,
    Catalogue,
    CreditView,
    EntryView,
    LedgerPage,
    PointsView,
    RedeemRequest,
    RedemptionView,
    RewardView,
)
from shared.callers import Account, CallerAccount, CallerShop
from shared.db import ACQUIRE_TIMEOUT_S
from shared.events import CURRENCY_MINOR_UNITS
from shared.runtime import Runtime, service_api

RedemptionPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[!-~]+$", description="Redemption id.")
]


def build_api(runtime: Runtime, *, programmes: ProgrammeBook) -> FastAPI:
    """The FastAPI app served for the paths the operational routes do not take; each request
    needs an X-API-Key, is about the key's shop (a platform key names it with X-Shop-Id) and
    is served its programme in force at the request's time."""
    api = service_api(
        "earn",
        "Points balances, ledger, rewards and redemptions; store credit spends; "
        "operators' adjustments.",
    )
    install_handlers(api)
    requests = IdempotentRequests(runtime)
    api.include_router(account_routes(runtime))
    api.include_router(redemption_routes(requests, programmes))
    api.include_router(credit_routes(requests))
    api.include_router(admin_routes(requests))
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = document_required_keys(generate())
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


def account_routes(runtime: Runtime) -> APIRouter:
    """What a customer holds: the balance and the ledger behind it."""
    router = APIRouter(prefix="/v1/customers", tags=["accounts"], dependencies=[READ])

    @router.get("/{customer_id}/balance", responses=problems(401, 403, 404, 422, 503))
    async def get_balance(customer_id: CustomerPath, *, caller: CallerAccount) -> BalanceView:
        """Available and pending points, lifetime earned, store credit per currency, and
        whether redemptions are blocked (a negative balance); all 0 for a customer earn knows
        of at the shop (a sign-up, an order, a tier) but has never credited. A member shop of
        a coalition is answered the coalition's account, which all its members share."""
        shop_id = caller.holder_id
        async with runtime.require_pool().acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            account = await read_account(conn, shop_id, customer_id)
            credit = await read_credit(conn, shop_id, customer_id)
            unknown = (
                account is None
                and not credit
                and not await known_customer(conn, shop_id, customer_id)
            )
        if unknown:
            raise NotFound(f"earn knows no customer {customer_id!r}", code="unknown_customer")
        available = account.points_balance if account else 0
        return BalanceView(
            customer_id=customer_id,
            points=PointsView(
                available=available,
                pending=account.points_pending if account else 0,
                lifetime_earned=account.lifetime_earned if account else 0,
            ),
            store_credit=[_credit(c, balance, pending) for c, balance, pending in credit],
            redemptions_blocked=available < 0,
        )

    @router.get("/{customer_id}/ledger", responses=problems(401, 403, 404, 422, 503))
    async def get_ledger(
        customer_id: CustomerPath,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[
            str | None,
            Query(
                pattern=r"^[0-9]{1,18}$",
                description="The `next_cursor` of the page before (the seq of its last entry).",
            ),
        ] = None,
        *,
        account: CallerAccount,
    ) -> LedgerPage:
        """The customer's ledger entries (points and store credit), newest first, each with
        the shop where it happened; pass `next_cursor` back as `cursor` for the next page. A
        member shop of a coalition reads the coalition's account, with the order ids of the
        other members' entries left out."""
        before = int(cursor) if cursor is not None else None
        shop_id = account.holder_id
        async with runtime.require_pool().acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            rows = await read_entries(
                conn, shop_id, customer_id, before_seq=before, limit=limit + 1
            )
            unknown = (
                not rows and before is None and not await known_customer(conn, shop_id, customer_id)
            )
        if unknown:
            raise NotFound(f"earn knows no customer {customer_id!r}", code="unknown_customer")
        items = [_entry(r, account) for r in rows[:limit]]
        return LedgerPage(
            customer_id=customer_id,
            items=items,
            next_cursor=str(items[-1].seq) if len(rows) > limit else None,
        )

    return router


def redemption_routes(requests: IdempotentRequests, programmes: ProgrammeBook) -> APIRouter:
    """The catalogue, redeeming and cancelling."""
    runtime = requests.runtime
    router = APIRouter(prefix="/v1", tags=["rewards"])

    def programme_of(shop_id: str) -> Programme:
        """The programme in force now of the shop (or the coalition) holding the accounts; 404
        for one without."""
        try:
            return programmes.at(shop_id, runtime.clock.now())
        except UnknownShop:
            raise NotFound(f"earn knows no shop {shop_id!r}", code="unknown_shop") from None

    @router.get("/rewards", dependencies=[READ], responses=problems(401, 403, 404, 422))
    async def get_rewards(*, account: CallerAccount) -> Catalogue:
        """The rewards the shop offers now: its programme's active rewards (its coalition's,
        while it is a member)."""
        rewards = programme_of(account.holder_id).rewards
        return Catalogue(rewards=[RewardView.of(r) for r in rewards if r.active])

    @router.post(
        "/customers/{customer_id}/redemptions",
        status_code=201,
        response_model=RedemptionView,
        dependencies=[REDEEM],
        responses=problems(400, 401, 403, 404, 409, 422, 503),
    )
    async def post_redemption(
        customer_id: CustomerPath,
        body: RedeemRequest,
        idempotency_key: IdempotencyKey = None,
        *,
        account: CallerAccount,
    ) -> Any:
        """Spend points on a reward: a `redeemed` ledger entry and a voucher code. Refused
        (409) when the available points do not cover it or the balance is negative. A member
        shop of a coalition spends from the coalition's account, on its catalogue."""
        key = require_key(idempotency_key)
        shop_id, holder = account.shop_id, account.holder_id
        command = RedeemReward(
            shop_id, customer_id, body.reward, body.currency, body.steps, body.points, holder
        )

        async def action(uow: UnitOfWork) -> tuple[int, BaseModel]:
            now = runtime.clock.now()
            done = await redeem_reward(uow, command, programme=programme_of(holder), now=now)
            return 201, RedemptionView.of(done.redemption)

        asked = {"customer_id": customer_id, **body.model_dump(mode="json")}
        return await requests.run(shop_id, "redeem", key, asked, action)

    @router.get(
        "/redemptions/{redemption_id}",
        dependencies=[READ],
        responses=problems(401, 403, 404, 422, 503),
    )
    async def get_redemption(
        redemption_id: RedemptionPath, *, shop_id: CallerShop
    ) -> RedemptionView:
        """A redemption of the shop, its voucher, and whether it was cancelled."""
        async with runtime.require_pool().acquire(timeout=ACQUIRE_TIMEOUT_S) as conn:
            found = await PostgresUnitOfWork(conn).redemptions.get(shop_id, redemption_id)
        if found is None:
            raise NotFound(f"no redemption {redemption_id!r}", code="unknown_redemption")
        return RedemptionView.of(found)

    @router.post(
        "/redemptions/{redemption_id}/cancel",
        dependencies=[REDEEM],
        responses=problems(400, 401, 403, 404, 422, 503),
    )
    async def post_cancel(
        redemption_id: RedemptionPath,
        body: CancelRequest | None = None,
        *,
        shop_id: CallerShop,
    ) -> RedemptionView:
        """Void the voucher and give the points back (a `restored` entry), once: cancelling
        again answers the cancelled redemption and changes nothing."""
        reason = (body or CancelRequest()).reason
        pool = runtime.require_pool()
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            cancelled = await cancel_redemption(
                PostgresUnitOfWork(conn),
                shop_id,
                redemption_id,
                reason=reason,
                now=runtime.clock.now(),
            )
        if runtime.relay is not None:
            runtime.relay.wake()
        return RedemptionView.of(cancelled)

    return router


def _entry(row: asyncpg.Record, account: Account) -> EntryView:
    """An entry as the caller sees it: a member shop is not told other members' order ids."""
    entry = EntryView.model_validate(dict(row))
    if account.coalition_member and entry.shop != account.shop_id:
        return entry.model_copy(update={"order_id": None})
    return entry


def _credit(currency: str, balance: int, pending: int) -> CreditView:
    digits = CURRENCY_MINOR_UNITS[currency]
    return CreditView(
        currency=currency,
        amount=Decimal(balance).scaleb(-digits),
        amount_minor=balance,
        pending_minor=pending,
    )
