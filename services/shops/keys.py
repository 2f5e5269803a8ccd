"""API keys: a 256-bit random secret, kept only as its sha256 (a secret that random leaves
nothing to brute-force, so no slow hash is needed), shown by a prefix."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from shared.api_keys import key_sha256

PREFIX_LENGTH = 12


@dataclass(frozen=True, slots=True)
class Secret:
    key_id: str
    secret: str
    prefix: str
    sha256: str


def new_secret() -> Secret:
    """`lk_` and 43 characters of URL-safe base64 (32 random bytes)."""
    secret = f"lk_{secrets.token_urlsafe(32)}"
    return Secret(
        key_id=f"key_{secrets.token_hex(8)}",
        secret=secret,
        prefix=secret[:PREFIX_LENGTH],
        sha256=key_sha256(secret),
    )
