"""A check of our own for Schemathesis (SCHEMATHESIS_HOOKS=hooks): a request valid by the
OpenAPI document is never refused as malformed, on any operation."""

from __future__ import annotations

import json
from typing import Any

import schemathesis

MALFORMED = "the request does not match the API"


@schemathesis.check
def valid_requests_are_not_malformed(ctx: Any, response: Any, case: Any) -> bool | None:
    """Fail a 422 'does not match the API' to a request generated as valid by the document."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    try:
        detail = json.loads(response.content).get("detail")
    except (ValueError, AttributeError):
        return None
    if detail == MALFORMED:
        raise AssertionError(f"a request valid by the document was refused: {response.text}")
    return None
