"""Web Push with VAPID (RFC 8030, 8291, 8292): encrypted with pywebpush, sent with httpx."""

from __future__ import annotations

import base64
import json
import re
import ssl
from datetime import timedelta
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid02
from pywebpush import WebPusher, WebPushException

from services.notify.adapters.channel import (
    Envelope,
    PermanentDelivery,
    SubscriptionGone,
    TransientDelivery,
)
from services.notify.settings import NotifySettings
from shared.clock import Clock

_TOPIC_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def vapid_public_key(private_key: str) -> str:
    """The application server key a browser subscribes with (base64url, uncompressed point)."""
    vapid = Vapid02.from_string(private_key)
    raw = vapid.public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def push_topic(trigger: str) -> str:
    """A Topic header: a newer message of the same trigger replaces an undelivered older one."""
    return _TOPIC_CHARS.sub("-", trigger)[:32]


class WebPushChannel:
    """Encrypts the notification for the subscription and posts it to the push service."""

    name = "push"

    def __init__(self, settings: NotifySettings, clock: Clock) -> None:
        if settings.vapid_private_key is None:
            raise ValueError("LOYALTY_VAPID_PRIVATE_KEY is needed for Web Push")
        self._vapid = Vapid02.from_string(settings.vapid_private_key.get_secret_value())
        self._subject = settings.vapid_subject
        self._ttl = settings.push_ttl_s
        self._clock = clock
        verify: ssl.SSLContext | bool = True
        if settings.push_ca_file is not None:
            verify = ssl.create_default_context(cafile=str(settings.push_ca_file))
        self._http = httpx.AsyncClient(timeout=settings.push_timeout_s, verify=verify)

    def can_reach(self, envelope: Envelope) -> bool:
        return envelope.push_subscription is not None

    async def send(self, envelope: Envelope) -> None:
        subscription = envelope.push_subscription
        if subscription is None:
            raise PermanentDelivery("no push subscription")
        rendered = envelope.rendered
        payload = json.dumps(
            {
                "title": rendered.push_title,
                "body": rendered.push_body,
                "url": envelope.link,
                "tag": push_topic(envelope.trigger),
                "lang": rendered.language,
            },
            ensure_ascii=False,
        ).encode()
        try:
            body = WebPusher(subscription).encode(payload, "aes128gcm")["body"]
        except (WebPushException, ValueError, TypeError) as exc:
            raise PermanentDelivery(f"unusable push subscription: {type(exc).__name__}") from None
        endpoint = str(subscription["endpoint"])
        headers = {
            "TTL": str(self._ttl),
            "Urgency": "high" if envelope.category == "transactional" else "normal",
            "Topic": push_topic(envelope.trigger),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            **self._authorization(endpoint),
        }
        try:
            response = await self._http.post(endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransientDelivery(f"push service unreachable: {type(exc).__name__}") from None
        _check(response.status_code)

    def _authorization(self, endpoint: str) -> dict[str, str]:
        parts = urlsplit(endpoint)
        expires = self._clock.now() + timedelta(hours=12)
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "sub": self._subject,
            "exp": int(expires.timestamp()),
        }
        signed: dict[str, str] = self._vapid.sign(claims)
        return signed

    async def close(self) -> None:
        await self._http.aclose()


def _check(status: int) -> None:
    if status in (200, 201, 202):
        return
    if status in (404, 410):
        raise SubscriptionGone(f"push subscription gone: HTTP {status}")
    if status in (401, 403):
        # VAPID is refused for every message: a configuration problem, retried until fixed.
        raise TransientDelivery(f"push service refused our VAPID credentials: HTTP {status}")
    if status == 429 or status >= 500:
        raise TransientDelivery(f"push service busy: HTTP {status}")
    raise PermanentDelivery(f"push service rejected the message: HTTP {status}")
