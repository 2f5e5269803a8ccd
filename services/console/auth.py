"""FastAPI dependencies that say who is asking and what they may do.

    CurrentSession  the signed-in user (a cookie naming a live session), else SignInNeeded;
                    on an unsafe method, also the session's CSRF token, else CsrfRefused
    ShopAccess      the session's user in the URL's shop: a shop without a membership is a
                    404 (as the APIs answer), unless the user is a platform operator
    require(cap)    a ShopAccess whose role has the capability, else Forbidden (403)

The refusals are exceptions the app turns into pages (http.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Final

from fastapi import Depends, Path, Request, Response

from services.console.adapters import accounts, sessions
from services.console.adapters.accounts import User
from services.console.adapters.upstream import ShopApi
from services.console.context import console_of
from services.console.domain.roles import Capability, Role, allows
from services.console.handlers import session_key

SESSION_COOKIE: Final = "__Host-console_session"
# The double-submit token of the sign-in form, before there is a session to hold one.
SIGN_IN_COOKIE: Final = "__Host-console_sign_in"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# last_seen_at is written at most this often: a page view is not a database write.
TOUCH_EVERY: Final = timedelta(minutes=1)


class Refusal(Exception):
    """A request the console answers with an error page."""


class SignInNeeded(Refusal):
    """No live session: to the sign-in page."""


class CsrfRefused(Refusal):
    """An unsafe request without the session's token, or sent from another site (403)."""


class Forbidden(Refusal):
    """Signed in, but the role does not allow it (403)."""


class NotFound(Refusal):
    """No such page, or a shop the user has no membership of (404)."""


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    key: str


async def current_session(request: Request) -> Session:
    console = console_of(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise SignInNeeded
    key, now = session_key(cookie), console.now()
    async with console.pool.acquire() as conn:
        row = await sessions.session(conn, key)
        if row is None:
            raise SignInNeeded
        if now >= row.expires_at or now - row.last_seen_at >= console.policy.session_idle:
            await sessions.delete_session(conn, key)
            raise SignInNeeded
        user = await accounts.user_by_id(conn, row.user_id)
        if user is None or user.disabled:
            await sessions.delete_sessions_of(conn, row.user_id)
            raise SignInNeeded
        if now - row.last_seen_at >= TOUCH_EVERY:
            await sessions.touch_session(conn, key, now)
    request.state.user, request.state.csrf_token = user, row.csrf_token
    if request.method not in SAFE_METHODS:
        await check_csrf(request, row.csrf_token)
    return Session(user, row.csrf_token, key)


async def check_csrf(request: Request, expected: str) -> None:
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not given or not secrets.compare_digest(given.encode(), expected.encode()):
        raise CsrfRefused


CurrentSession = Annotated[Session, Depends(current_session)]


async def optional_session(request: Request) -> Session | None:
    """The session when the request carries a session cookie (checked, CSRF included, as
    current_session does); None when it carries none."""
    if not request.cookies.get(SESSION_COOKIE):
        return None
    return await current_session(request)


MaybeSession = Annotated[Session | None, Depends(optional_session)]


@dataclass(frozen=True)
class ShopAccess:
    """One user in one shop; the only way pages reach another service (`api`)."""

    shop: str
    user: User
    role: Role | None  # None: a platform operator without a membership of the shop
    api: ShopApi
    csrf_token: str

    def can(self, capability: Capability) -> bool:
        return allows(self.role, capability, platform_operator=self.user.platform_operator)


async def shop_access(
    request: Request, session: CurrentSession, shop: Annotated[str, Path(max_length=64)]
) -> ShopAccess:
    console = console_of(request)
    async with console.pool.acquire() as conn:
        membership = await accounts.membership(conn, session.user.user_id, shop)
    if membership is None and not session.user.platform_operator:
        raise NotFound
    access = ShopAccess(
        shop=shop,
        user=session.user,
        role=None if membership is None else membership.role,
        api=console.shop_api(shop, session.user.user_id),
        csrf_token=session.csrf_token,
    )
    request.state.access = access
    return access


def require(capability: Capability) -> Callable[..., Awaitable[ShopAccess]]:
    """A dependency: the ShopAccess, when its role has the capability."""

    async def allowed(access: Annotated[ShopAccess, Depends(shop_access)]) -> ShopAccess:
        if not access.can(capability):
            raise Forbidden
        return access

    return allowed


def set_cookie(response: Response, name: str, value: str, *, max_age: int) -> None:
    """`__Host-` cookies: Secure, path /, no Domain; Max-Age only, never Expires (a server
    clock that differs from the browser's must not expire a cookie early or late)."""
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="lax"
    )


def expire_cookie(response: Response, name: str) -> None:
    set_cookie(response, name, "", max_age=0)
