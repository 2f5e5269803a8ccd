"""The notify HTTP API: one-click unsubscribe (RFC 8058) and the VAPID public key."""

from __future__ import annotations

from html import escape

import structlog
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from services.notify.adapters import projections
from services.notify.adapters.push import vapid_public_key
from services.notify.domain.tokens import Unsubscribe, verify_unsubscribe
from services.notify.settings import NotifySettings
from shared.runtime import Runtime

log = structlog.get_logger(__name__)

_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: Arial, sans-serif; max-width: 480px; margin: 2em auto;">{body}</body>
</html>"""


def build_api(runtime: Runtime, settings: NotifySettings) -> FastAPI:
    api = FastAPI(title="loyalty-notify", docs_url=None, redoc_url=None, openapi_url=None)

    def request_of(token: str) -> Unsubscribe:
        request = verify_unsubscribe(token, settings.require_secrets())
        if request is None:
            raise HTTPException(status_code=400, detail="invalid or tampered unsubscribe link")
        return request

    @api.get("/unsubscribe", response_class=HTMLResponse)
    async def confirm(token: str = Query(max_length=512)) -> HTMLResponse:
        """A page with a button: link checkers that follow GET links unsubscribe nobody."""
        request_of(token)
        body = (
            f'<form method="post" action="unsubscribe?token={escape(token)}">'
            "<p>Stop these messages? / Ngừng nhận các tin nhắn này?</p>"
            '<button type="submit">Unsubscribe / Hủy đăng ký</button></form>'
        )
        return HTMLResponse(_PAGE.format(title="Unsubscribe", body=body))

    @api.post("/unsubscribe", response_class=HTMLResponse)
    async def unsubscribe(token: str = Query(max_length=512)) -> HTMLResponse:
        """One-click (List-Unsubscribe-Post) and the confirmation form both land here."""
        request = request_of(token)
        async with runtime.require_pool().acquire() as conn:
            known = await projections.unsubscribe(
                conn, request.customer_id, request.channel, runtime.clock.now()
            )
        log.info(
            "customer_unsubscribed",
            customer_id=request.customer_id,
            channel=request.channel,
            known=known,
        )
        body = "<p>You are unsubscribed. / Bạn đã hủy đăng ký.</p>"
        return HTMLResponse(_PAGE.format(title="Unsubscribed", body=body))

    @api.get("/push/vapid-public-key")
    async def public_key() -> dict[str, str]:
        """The applicationServerKey browsers subscribe with."""
        if settings.vapid_private_key is None:
            raise HTTPException(status_code=404, detail="Web Push is not configured")
        return {"public_key": vapid_public_key(settings.vapid_private_key.get_secret_value())}

    return api
