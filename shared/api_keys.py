"""API keys: the operators' routes' configured key, and how shops' keys are hashed."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.exceptions import HTTPException

GivenKey = Annotated[str | None, Depends(APIKeyHeader(name="X-API-Key", auto_error=False))]


def key_check(expected: SecretStr | None, *, disabled: str) -> Callable[[GivenKey], None]:
    """A FastAPI dependency: 401 without the header, 403 with another key, and 403 (`disabled`
    saying why) when no key is configured, so that the routes cannot be opened by accident."""

    def check_key(given: GivenKey) -> None:
        if expected is None:
            raise HTTPException(403, disabled)
        if given is None:
            raise HTTPException(401, "the X-API-Key header is required")
        if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
            raise HTTPException(403, "the X-API-Key header is not valid")

    return check_key


def key_sha256(key: str) -> str:
    """How a shop's API key is stored and looked up: the sha256 hex of the whole key."""
    return hashlib.sha256(key.encode()).hexdigest()
