"""The reader's language: saved on the account when signed in, in a cookie before."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.console import handlers
from services.console.auth import MaybeSession, set_cookie
from services.console.context import console_of
from services.console.formats import LANGUAGES
from services.console.pages.sign_in import safe_next
from services.console.rendering import LANGUAGE_COOKIE

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
