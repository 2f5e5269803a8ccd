"""Signed unsubscribe tokens: which customer of which shop leaves which channel, unforgeable
without the key.

The signed body is `<channel> <shop> <customer>` (ids hold no spaces). Links sent before shops
existed sign `<channel>:<customer>`: they stay valid, for shop `default`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

CHANNELS = ("email", "push")
DEFAULT_SHOP = "default"


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    shop_id: str
    customer_id: str
    channel: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_unsubscribe(shop_id: str, customer_id: str, channel: str, secret: str) -> str:
    body = f"{channel} {shop_id} {customer_id}".encode()
    mac = hmac.new(secret.encode(), b"unsubscribe:" + body, hashlib.sha256).digest()
    return f"{_b64(body)}.{_b64(mac)}"


def verify_unsubscribe(token: str, secret: str) -> Unsubscribe | None:
    """The request a token carries, or None when it is malformed or not signed with `secret`."""
    try:
        body_text, mac_text = token.split(".", 1)
        body, mac = _unb64(body_text), _unb64(mac_text)
    except ValueError:
        return None
    expected = hmac.new(secret.encode(), b"unsubscribe:" + body, hashlib.sha256).digest()
    if not hmac.compare_digest(mac, expected):
        return None
    text = body.decode(errors="replace")
    if " " in text:
        channel, shop_id, customer_id = [*text.split(" ", 2), "", ""][:3]
    else:  # a link of the single-shop release
        shop_id = DEFAULT_SHOP
        channel, _, customer_id = text.partition(":")
    if channel not in CHANNELS or not shop_id or not customer_id or " " in customer_id:
        return None
    return Unsubscribe(shop_id, customer_id, channel)
