"""The console's web app: pages, static files, security headers and error pages."""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.console import widget_api
from services.console.adapters import widget_settings
from services.console.auth import CsrfRefused, Forbidden, NotFound, SignInNeeded
from services.console.context import Console
from services.console.pages import (
    account,
    customer_actions,
    customers,
    home,
    messages,
    operations,
    programme,
    programme_editor,
    shops,
    sign_in,
    staff,
)
from services.console.pages import widget as widget_page
from services.console.rendering import render
from services.console.widget_cors import OriginCache, OriginsOf, WidgetCors, shop_of

STATIC: Final = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: Final = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


class SecurityHeaders:
    """Every response of the console's pages carries the CSP and its companions; a response
    that sets its own CSP (an email preview, say) keeps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


class CrossSiteRefusal:
    """An unsafe request sent by another site's page is refused before anything else: the
    browser says so in Sec-Fetch-Site, or an Origin that is not this console's. The widget API
    is meant for other sites: it takes a bearer token, no cookie, and has its own CORS."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in ("GET", "HEAD", "OPTIONS")
            and shop_of(scope["path"]) is None
        ):
            request = Request(scope)
            if _cross_site(request):
                response = render(request, "error.html", {"status": 403}, status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _cross_site(request: Request) -> bool:
    if request.headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin == "null" or urlsplit(origin).netloc != request.headers.get("host")


def _origins_from(console: Console) -> OriginsOf:
    async def origins(shop_id: str) -> frozenset[str]:
        async with console.pool.acquire() as conn:
            return await widget_settings.allowed_origins(conn, shop_id)

    return origins


def build_api(console: Console) -> FastAPI:
    api = FastAPI(title="loyalty-console", docs_url=None, redoc_url=None, openapi_url=None)
    api.state.console = console
    api.add_middleware(CrossSiteRefusal)
    api.add_middleware(SecurityHeaders)
    api.add_middleware(WidgetCors, origins=OriginCache(_origins_from(console)))
    api.mount("/static", StaticFiles(directory=STATIC), name="static")

    @api.get("/favicon.svg", include_in_schema=False)
    async def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    @api.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/shops", status_code=303)

    api.include_router(sign_in.router)
    api.include_router(account.router)
    api.include_router(shops.router)
    api.include_router(home.router)
    api.include_router(staff.router)
    api.include_router(widget_page.router)
    widget_api.install(api)
    api.include_router(programme.router)
    api.include_router(programme_editor.router)
    api.include_router(messages.router)
    api.include_router(customers.router)
    api.include_router(customer_actions.router)
    api.include_router(operations.router)
    _install_error_pages(api)
    return api


def _install_error_pages(api: FastAPI) -> None:
    @api.exception_handler(SignInNeeded)
    async def sign_in_needed(request: Request, exc: SignInNeeded) -> Response:
        target = request.url.path if request.method == "GET" else "/shops"
        return RedirectResponse(f"/sign-in?next={target}", status_code=303)

    @api.exception_handler(CsrfRefused)
    @api.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Exception) -> Response:
        return render(request, "error.html", {"status": 403}, status_code=403)

    @api.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return render(request, "error.html", {"status": 404}, status_code=404)

    @api.exception_handler(RequestValidationError)
    async def invalid_form(request: Request, exc: RequestValidationError) -> Response:
        return render(request, "error.html", {"status": 400}, status_code=400)

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        status = exc.status_code if exc.status_code in (403, 404, 405) else 400
        return render(request, "error.html", {"status": status}, status_code=status)
