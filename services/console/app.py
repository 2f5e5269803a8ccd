"""ASGI entry point of the console; nothing runs at import time."""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from services.console.bootstrap import bootstrap


def create_app() -> AsgiFastStream:
    app, _runtime = bootstrap()
    return app
