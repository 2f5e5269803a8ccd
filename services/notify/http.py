"""The notify HTTP API: one-click unsubscribe (RFC 8058), the VAPID public key, and the
customers' and templates' routes of the console (customers_http.py, templates_http.py).

Errors are RFC 9457 problem documents (application/problem+json).
"""

from __future__ import annotations

from html import escape
from typing import Annotated

import structlog
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from services.notify.adapters import projections
from services.notify.adapters.push import vapid_public_key
from services.notify.customers_http import install_customer_routes
from services.notify.domain.tokens import Unsubscribe, verify_unsubscribe
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings
from services.notify.templates_http import install_template_routes
from shared.problems import install_problem_handlers, problems
from shared.runtime import Runtime, service_api

log = structlog.get_logger(__name__)

_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: Arial, sans-serif; max-width: 480px; margin: 2em auto;">{body}</body>
</html>"""


# What sign_unsubscribe writes: base64url of the request, a dot, base64url of its signature.
Token = Annotated[
    str,
    Query(
        max_length=512,
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$",
        description="The token of an unsubscribe link; one notify did not sign is a 403.",
    ),
]


class PublicKey(BaseModel):
    public_key: str


def build_api(runtime: Runtime, settings: NotifySettings, shops: ShopMessageSettings) -> FastAPI:
    """The FastAPI app served for the paths the operational routes do not take."""
    api = service_api(
        "notify",
        "One-click unsubscribe (RFC 8058), the Web Push application server key, and "
        "customers: search, profile, messages, resend, unsubscribe; templates and their "
        "previews. The customers' and templates' routes need "
        "X-API-Key: the key of a shop (its own customers), or a platform key that names the "
        "shop with X-Shop-Id (the shop `default` when absent).",
    )
    install_problem_handlers(api, invalid_field="the request does not match the API")
    install_customer_routes(api, runtime)
    install_template_routes(api, runtime, shops)

    def request_of(token: str) -> Unsubscribe:
        request = verify_unsubscribe(token, settings.require_secrets())
        if request is None:
            raise HTTPException(status_code=403, detail="invalid or tampered unsubscribe link")
        return request

    @api.get("/unsubscribe", response_class=HTMLResponse, responses=problems(403, 422))
    async def confirm(token: Token) -> HTMLResponse:
        """A page with a button: link checkers that follow GET links unsubscribe nobody."""
        request_of(token)
        body = (
            f'<form method="post" action="unsubscribe?token={escape(token)}">'
            "<p>Stop these messages? / Ngừng nhận các tin nhắn này?</p>"
            '<button type="submit">Unsubscribe / Hủy đăng ký</button></form>'
        )
        return HTMLResponse(_PAGE.format(title="Unsubscribe", body=body))

    @api.post("/unsubscribe", response_class=HTMLResponse, responses=problems(403, 422, 503))
    async def unsubscribe(token: Token) -> HTMLResponse:
        """One-click (List-Unsubscribe-Post) and the confirmation form both land here.

        The shop is the one the signed link names, not the request's: the customer following
        a link holds no key, and a link of one shop never touches the same customer id at
        another."""
        request = request_of(token)
        async with runtime.require_pool().acquire() as conn:
            known = await projections.unsubscribe(
                conn, request.shop_id, request.customer_id, request.channel, runtime.clock.now()
            )
        log.info(
            "customer_unsubscribed",
            shop_id=request.shop_id,
            customer_id=request.customer_id,
            channel=request.channel,
            known=known,
        )
        body = "<p>You are unsubscribed. / Bạn đã hủy đăng ký.</p>"
        return HTMLResponse(_PAGE.format(title="Unsubscribed", body=body))

    @api.get("/push/vapid-public-key", responses=problems(404))
    async def public_key() -> PublicKey:
        """The applicationServerKey browsers subscribe with; 404 when Web Push is off."""
        if settings.vapid_private_key is None:
            raise HTTPException(status_code=404, detail="Web Push is not configured")
        return PublicKey(public_key=vapid_public_key(settings.vapid_private_key.get_secret_value()))

    return api
