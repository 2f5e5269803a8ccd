"""The reader's own account: its password, and the language (saved on the account when
signed in, in a cookie before)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.console import handlers
from services.console.auth import (
    SESSION_COOKIE,
    CurrentSession,
    MaybeSession,
    expire_cookie,
    set_cookie,
)
from services.console.context import console_of
from services.console.formats import LANGUAGES
from services.console.pages.sign_in import safe_next
from services.console.rendering import LANGUAGE_COOKIE, render

router = APIRouter()

LANGUAGE_COOKIE_S = 365 * 24 * 3600


@router.post("/language")
async def choose_language(
    request: Request,
    session: MaybeSession,
    language: Annotated[str, Form(pattern="^(vi|en)$")],
    next: Annotated[str, Form(max_length=2000)] = "/shops",  # noqa: A002
) -> Response:
    """Signed in, the form carries the session's CSRF token (checked by current_session);
    signed out there is nothing to protect but the choice of words."""
    if language not in LANGUAGES:
        language = LANGUAGES[0]
    if session is not None:
        await handlers.choose_language(
            console_of(request).pool, user_id=session.user.user_id, language=language
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(response, LANGUAGE_COOKIE, language, max_age=LANGUAGE_COOKIE_S)
    return response


@router.get("/account")
async def account(request: Request, session: CurrentSession) -> Response:
    return render(request, "account.html")


@router.post("/account/password")
async def change_password(
    request: Request,
    session: CurrentSession,
    current: Annotated[str, Form(max_length=1024)],
    new: Annotated[str, Form(max_length=1024)],
) -> Response:
    console = console_of(request)
    try:
        await handlers.change_password(
            console.pool,
            passwords=console.passwords,
            user_id=session.user.user_id,
            current=current,
            new=new,
            now=console.now(),
        )
    except handlers.AccountRefused:
        return render(request, "account.html", {"error": True}, status_code=422)
    response = RedirectResponse("/sign-in", status_code=303)
    expire_cookie(response, SESSION_COOKIE)
    return response
