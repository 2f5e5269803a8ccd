"""Hooks of our own for Schemathesis (SCHEMATHESIS_HOOKS=hooks): a check that a request valid
by the OpenAPI document is never refused as malformed, on any operation, and the mending of how
Schemathesis 4.32 sends a path parameter holding a percent sign."""

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


@schemathesis.hook
def map_path_parameters(ctx: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Path parameters that reach the service as generated. Schemathesis percent-decodes a
    value before it encodes it ("idempotent" quoting), so an id such as "EM.%AD=" (printable
    ASCII, valid by the document) arrives as "EM.\ufffd=" and is refused; escaping the "%"
    first makes the decoding give the value back."""
    if not path_parameters:  # None for a route without path parameters
        return path_parameters
    return {
        name: value.replace("%", "%25") if isinstance(value, str) else value
        for name, value in path_parameters.items()
    }
