"""The widget's customer token: a JWT (HS256) the shop's backend signs with its widget secret.

The signature and the claims' presence are PyJWT's; the times are checked here against the
clock the caller passes, never the machine's, so a shifted clock shifts both sides alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import jwt

AUDIENCE: Final = "loyalty-widget"
ALGORITHM: Final = "HS256"  # pinned: no `none`, no key confusion with an asymmetric algorithm
LONGEST: Final = timedelta(hours=1)  # exp - iat; the docs recommend 15 minutes
LEEWAY: Final = timedelta(seconds=30)  # the shop's clock and ours may differ a little
REQUIRED: Final = ["exp", "iat", "sub", "iss", "aud"]


class TokenInvalid(ValueError):
    """The token does not identify a customer of this shop now; `reason` is for logs only
    (the widget is told nothing more than that the token is invalid)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WidgetCustomer:
    shop_id: str
    customer_id: str
    locale: str | None


def verify(
    token: str, *, shop_id: str, secrets: Mapping[str, str], now: datetime
) -> WidgetCustomer:
    """The customer a token names, checked with the shop's active secrets (by `kid`)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError as error:
        raise TokenInvalid("malformed") from error
    secret = secrets.get(str(header.get("kid", "")))
    if secret is None:
        raise TokenInvalid("unknown_kid")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=shop_id,
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": REQUIRED,
            },
        )
    except jwt.InvalidTokenError as error:
        raise TokenInvalid(type(error).__name__) from error
    return check_claims(claims, shop_id=shop_id, now=now)


def check_claims(claims: Mapping[str, Any], *, shop_id: str, now: datetime) -> WidgetCustomer:
    """The times and the subject of claims whose signature, issuer and audience are checked."""
    issued, expires = _instant(claims.get("iat")), _instant(claims.get("exp"))
    if expires - issued > LONGEST.total_seconds():
        raise TokenInvalid("lives_too_long")
    now_s = now.timestamp()
    if issued - LEEWAY.total_seconds() > now_s:
        raise TokenInvalid("issued_in_the_future")
    if expires + LEEWAY.total_seconds() <= now_s:
        raise TokenInvalid("expired")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= 128:
        raise TokenInvalid("bad_subject")
    locale = claims.get("locale")
    return WidgetCustomer(shop_id, subject, locale if locale in ("vi", "en") else None)


def _instant(value: object) -> float:
    # bool is an int to Python, not a time to anyone.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenInvalid("bad_time")
    return float(value)
