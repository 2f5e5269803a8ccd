"""Storefront origins a shop allows to call the widget API: exact `scheme://host[:port]`."""

from __future__ import annotations

from urllib.parse import urlsplit


class OriginRefused(ValueError):
    """Not an origin a browser sends: a path, a wildcard, a user or another scheme."""


def parse_origin(text: str) -> str:
    """The origin as browsers write it in the Origin header (lower-case, default port dropped)."""
    raw = text.strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise OriginRefused(f"{raw!r} is not an http(s) origin")
    if "*" in raw or parts.username or parts.password or parts.query or parts.fragment:
        raise OriginRefused(f"{raw!r} is not an exact origin")
    if parts.path not in ("", "/"):
        raise OriginRefused(f"{raw!r} has a path: an origin is scheme://host[:port]")
    try:
        port = parts.port
    except ValueError as error:
        raise OriginRefused(f"{raw!r} has no valid port") from error
    default = {"https": 443, "http": 80}[parts.scheme]
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + ("" if port in (None, default) else f":{port}")
