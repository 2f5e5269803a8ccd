"""ASGI entry point of the shops service; nothing runs at import time."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from services.shops.bootstrap import bootstrap


def create_app() -> AsgiFastStream:
    app, _runtime = bootstrap()
    return app
