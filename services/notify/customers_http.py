"""The customers' routes of the notify API, for the console: search, profile, messages with
their outcomes, resend and unsubscribe.

Every route needs X-API-Key and answers for the key's shop (a platform key names it with
X-Shop-Id): `read` for the GET routes, `admin` for the POST ones. A customer of another shop is
a 404, like one notify does not know.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import Depends, FastAPI, Header, Path, Query
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from services.notify.adapters import customers, projections
from services.notify.domain.search import like_pattern
from shared.callers import CallerShop, require_scope
from shared.problems import problems
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

READ = [Depends(require_scope("read"))]
ADMIN = [Depends(require_scope("admin"))]

CustomerPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[!-~]+$", description="Customer id.")
]
MessagePath = Annotated[int, Path(ge=1, le=2**63 - 1, description="The message's id.")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[!-~]{1,200}$",
        description="1 to 200 printable ASCII characters: the same key resends once.",
    ),
]


class CustomerSummary(BaseModel):
    customer_id: str
    name: str | None
    email: str | None
    locale: str | None
    signed_up_at: datetime | None


class CustomerList(BaseModel):
    items: list[CustomerSummary]


class Channels(BaseModel):
    email: bool
    push: bool


class Unsubscribed(BaseModel):
    email_at: datetime | None
    push_at: datetime | None


class Profile(BaseModel):
    """What notify knows of a customer; `tier` and `balance` as the last events told it."""

    customer_id: str
    name: str | None
    email: str | None
    locale: str | None
    time_zone: str | None
    birthday: date | None
    signed_up_at: datetime | None
    consent: Channels
    unsubscribed: Unsubscribed
    push_subscribed: bool
    tier: str | None
    tier_name: str | None
    balance: int | None


class LogEntry(BaseModel):
    outcome: str
    detail: str | None
    at: datetime


class Message(BaseModel):
    """A planned message, its status and why (`reason`: the last logged detail)."""

    message_id: int
    trigger: str
    template: str
    channel: str
    category: str
    status: str
    due_at: datetime
    updated_at: datetime
    attempts: int
    reason: str | None
    log: list[LogEntry]


class MessagePage(BaseModel):
    items: list[Message]
    next_cursor: str | None = Field(description="Pass as `cursor` for older messages.")


class Resent(BaseModel):
    message_id: int


class UnsubscribeRequest(BaseModel):
    channel: Literal["email", "push"]


def _profile(row: Any) -> Profile:
    return Profile(
        **{k: row[k] for k in ("customer_id", "name", "email", "locale", "time_zone")},
        birthday=row["birthday"],
        signed_up_at=row["signed_up_at"],
        consent=Channels(email=row["consent_email"], push=row["consent_push"]),
        unsubscribed=Unsubscribed(
            email_at=row["unsubscribed_email_at"], push_at=row["unsubscribed_push_at"]
        ),
        push_subscribed=row["push_subscribed"],
        tier=row["tier"],
        tier_name=row["tier_name"],
        balance=row["balance"],
    )


def _message(found: customers.LoggedMessage) -> Message:
    row = found.row
    entries = [LogEntry(outcome=e["outcome"], detail=e["detail"], at=e["at"]) for e in found.log]
    return Message(
        message_id=row["id"],
        **{k: row[k] for k in ("trigger", "template", "channel", "category", "status")},
        due_at=row["due_at"],
        updated_at=row["updated_at"],
        attempts=row["attempts"],
        reason=next((e.detail for e in reversed(entries) if e.detail), None),
        log=entries,
    )


def install_customer_routes(api: FastAPI, runtime: Runtime) -> None:
    """Add the customers' routes to notify's API."""

    async def profile_of(shop_id: str, customer_id: str) -> Profile:
        async with runtime.require_pool().acquire() as conn:
            row = await customers.profile(conn, shop_id, customer_id)
        if row is None:
            raise HTTPException(404, f"customer {customer_id!r} is not known here")
        return _profile(row)

    @api.get("/v1/customers", responses=problems(401, 403, 404, 422, 503), dependencies=READ)
    async def search(
        shop_id: CallerShop,
        q: Annotated[str, Query(min_length=1, max_length=200, description="Id, email or name.")],
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> CustomerList:
        """Customers whose id or email is `q`, then those whose name, email or id holds it
        (3 characters or more), Vietnamese diacritics ignored: "nguyen thi" finds "Nguyễn Thị".
        Needs the `read` scope."""
        async with runtime.require_pool().acquire() as conn:
            rows = await customers.search(conn, shop_id, q, like_pattern(q), limit)
        return CustomerList(items=[CustomerSummary(**dict(r)) for r in rows])

    @api.get(
        "/v1/customers/{customer_id}",
        responses=problems(401, 403, 404, 422, 503),
        dependencies=READ,
    )
    async def get_profile(customer_id: CustomerPath, shop_id: CallerShop) -> Profile:
        """Profile, consents, unsubscriptions, push subscription, tier and balance. Needs the
        `read` scope."""
        return await profile_of(shop_id, customer_id)

    @api.get(
        "/v1/customers/{customer_id}/messages",
        responses=problems(401, 403, 404, 422, 503),
        dependencies=READ,
    )
    async def get_messages(
        customer_id: CustomerPath,
        shop_id: CallerShop,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(pattern=r"^[1-9][0-9]{0,17}$")] = None,
    ) -> MessagePage:
        """The customer's messages, newest first, with every delivery decision (sent,
        suppressed by quiet hours or the cap, failed and why). Needs the `read` scope."""
        await profile_of(shop_id, customer_id)
        before = None if cursor is None else int(cursor)
        async with runtime.require_pool().acquire() as conn:
            found = await customers.messages(conn, shop_id, customer_id, before, limit)
        items = [_message(m) for m in found]
        more = len(items) == limit
        return MessagePage(items=items, next_cursor=str(items[-1].message_id) if more else None)

    @api.post(
        "/v1/customers/{customer_id}/messages/{message_id}/resend",
        status_code=202,
        responses=problems(401, 403, 404, 409, 422, 503),
        dependencies=ADMIN,
    )
    async def resend(
        customer_id: CustomerPath,
        message_id: MessagePath,
        idempotency_key: IdempotencyKey,
        shop_id: CallerShop,
    ) -> Resent:
        """Send a message again, now: a new message with the same content, which the usual
        checks (consent, quiet hours, frequency cap) still apply to. The same Idempotency-Key
        gives the same new message. Needs the `admin` scope."""
        async with runtime.require_pool().acquire() as conn, conn.transaction():
            try:
                copy = await customers.resend(
                    conn,
                    shop_id,
                    customer_id,
                    message_id,
                    key=idempotency_key,
                    now=runtime.clock.now(),
                )
            except customers.NotResendable:
                raise HTTPException(409, "this message's trigger is no longer sent") from None
        if copy is None:
            raise HTTPException(404, f"the customer has no message {message_id}")
        log.info("message_resend_planned", shop_id=shop_id, customer_id=customer_id, copy=copy)
        return Resent(message_id=copy)

    @api.post(
        "/v1/customers/{customer_id}/unsubscribe",
        # 400: a body that is not JSON at all (FastAPI's own answer, as a problem document).
        responses=problems(400, 401, 403, 404, 422, 503),
        dependencies=ADMIN,
    )
    async def unsubscribe(
        customer_id: CustomerPath, request: UnsubscribeRequest, shop_id: CallerShop
    ) -> Profile:
        """Withdraw the customer's consent on one channel, as the signed link in a message
        does. Needs the `admin` scope."""
        async with runtime.require_pool().acquire() as conn:
            known = await projections.unsubscribe(
                conn, shop_id, customer_id, request.channel, runtime.clock.now()
            )
        if not known:
            raise HTTPException(404, f"customer {customer_id!r} is not known here")
        log.info(
            "customer_unsubscribed",
            shop_id=shop_id,
            customer_id=customer_id,
            channel=request.channel,
            known=known,
        )
        return await profile_of(shop_id, customer_id)
