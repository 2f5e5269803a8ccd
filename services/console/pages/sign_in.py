"""Sign in and sign out."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.console import handlers
from services.console.auth import (
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    CsrfRefused,
    CurrentSession,
    expire_cookie,
    set_cookie,
)
from services.console.context import console_of
from services.console.rendering import render

router = APIRouter()

# The sign-in form's token lives as long as a person may take to fill it in.
SIGN_IN_FORM_S = 3600


def safe_next(target: str | None) -> str:
    """Only a path of this console: never another site (an open redirect)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/shops"


def _form(
    request: Request,
    *,
    next_path: str,
    status_code: int = 200,
    error: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        {"sign_in_token": token, "next": next_path, "error": error},
        status_code=status_code,
        headers=headers,
    )
    set_cookie(response, SIGN_IN_COOKIE, token, max_age=SIGN_IN_FORM_S)
    return response


@router.get("/sign-in")
async def sign_in_page(request: Request, next: str | None = None) -> Response:  # noqa: A002
    return _form(request, next_path=safe_next(next))


@router.post("/sign-in")
async def sign_in(
    request: Request,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=2000)] = "/shops",  # noqa: A002
) -> Response:
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected.encode(), csrf_token.encode()):
        raise CsrfRefused
    console = console_of(request)
    address = request.client.host if request.client else "unknown"
    outcome = await handlers.sign_in(
        console.pool,
        passwords=console.passwords,
        policy=console.policy,
        email=email,
        password=password,
        address=address,
        now=console.now(),
    )
    if isinstance(outcome, handlers.Throttled):
        return _form(
            request,
            next_path=safe_next(next),
            status_code=429,
            error="throttled",
            headers={"Retry-After": str(outcome.retry_after_s)},
        )
    if isinstance(outcome, handlers.WrongCredentials):
        return _form(request, next_path=safe_next(next), status_code=401, error="wrong")
    target = safe_next(next)
    if target == "/shops" and len(outcome.memberships) == 1 and not outcome.user.platform_operator:
        target = f"/shops/{outcome.memberships[0].shop_id}/"
    response = RedirectResponse(target, status_code=303)
    max_age = int(console.policy.session_max.total_seconds())
    set_cookie(response, SESSION_COOKIE, outcome.cookie, max_age=max_age)
    expire_cookie(response, SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request, session: CurrentSession) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE, "")
    await handlers.sign_out(console_of(request).pool, cookie=cookie)
    response = RedirectResponse("/sign-in", status_code=303)
    expire_cookie(response, SESSION_COOKIE)
    return response
