"""CORS of the widget API per shop: only the origins the shop allowed, with no credentials.

The shop is in the path (`/widget/v1/shops/{shop}/…`), so no token is decoded to decide; the
token travels in the Authorization header, never in a cookie, so nothing is sent with
credentials and the console's own CSRF guard has nothing to guard here.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX: Final = "/widget/v1/shops/"
ALLOW_METHODS: Final = "GET, POST"
ALLOW_HEADERS: Final = "Authorization, Content-Type, Idempotency-Key"
PREFLIGHT_MAX_AGE: Final = "600"
CACHE_S: Final = 10.0  # a change in the Widget page is in force within this long

OriginsOf = Callable[[str], Awaitable[frozenset[str]]]


def shop_of(path: str) -> str | None:
    """The shop named by a widget API path, or None for any other path."""
    if not path.startswith(PREFIX):
        return None
    shop = path[len(PREFIX) :].split("/", 1)[0]
    return shop or None


class OriginCache:
    """Each shop's allowed origins, read at most once per CACHE_S per process."""

    def __init__(self, load: OriginsOf, ttl_s: float = CACHE_S) -> None:
        self._load, self._ttl = load, ttl_s
        self._kept: dict[str, tuple[float, frozenset[str]]] = {}

    async def __call__(self, shop_id: str) -> frozenset[str]:
        now = time.monotonic()
        kept = self._kept.get(shop_id)
        if kept is not None and now - kept[0] < self._ttl:
            return kept[1]
        origins = await self._load(shop_id)
        self._kept[shop_id] = (now, origins)
        return origins


class WidgetCors:
    """Echo an allowed Origin (with Vary: Origin); answer preflights; leave other paths alone."""

    def __init__(self, app: ASGIApp, *, origins: OriginsOf) -> None:
        self.app, self.origins = app, origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        shop = shop_of(scope["path"]) if scope["type"] == "http" else None
        if shop is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin in await self.origins(shop)
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if preflight:
            await _preflight(origin if allowed else None)(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                if allowed and origin is not None:
                    out["Access-Control-Allow-Origin"] = origin
            await send(message)

        await self.app(scope, receive, with_cors)


def _preflight(origin: str | None) -> Response:
    headers = {"Vary": "Origin"}
    if origin is not None:
        headers |= {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        }
    # A refused preflight is an answer without the allow headers: the browser stops there.
    return Response(status_code=204, headers=headers)
