"""What the earn API's routes share: scopes, path parameters, idempotent execution by key."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import Depends, Header, Path
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.earn.adapters.idempotency import StoredResponse, claim, store
from services.earn.adapters.unit_of_work import PostgresUnitOfWork
from services.earn.problems import problem, refusal_body
from services.earn.refusals import Refused
from services.earn.unit_of_work import UnitOfWork
from shared.callers import require_scope
from shared.db import ACQUIRE_TIMEOUT_S
from shared.problems import PROBLEM
from shared.runtime import Runtime

KEY_WAIT_MS: Final = 10_000  # how long a retry waits for the request that holds its key
_KEY = re.compile(r"^[!-~]{1,200}$")

# The scopes of the customers' routes (the operators' need `admin`: admin_http.py).
READ = Depends(require_scope("read"))
REDEEM = Depends(require_scope("redeem"))

CustomerPath = Annotated[
    str, Path(min_length=1, max_length=128, pattern=r"^[!-~]+$", description="Customer id.")
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[!-~]{1,200}$",
        description="1 to 200 printable ASCII characters, unique per request: a retry with "
        "the same key and body gets the first response again. Without it: 400, "
        "`idempotency_key_missing`.",
    ),
]
Action = Callable[[UnitOfWork], Awaitable[tuple[int, BaseModel]]]


class IdempotentRequests:
    """Runs each request's action once per key, in one transaction with the stored response."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def run(
        self, shop_id: str, scope: str, key: str, asked: dict[str, Any], action: Action
    ) -> Any:
        """The action's response, or the one stored for `key` when it was used before.

        `asked` is what the request asks for: the same key with something else is refused
        (409). Keys are the shop's own: another shop's same key is another request. A refusal
        by the programme's rules (Refused) is stored and replayed as well; malformed requests
        never reach here and store nothing.
        """
        pool = self.runtime.require_pool()
        async with pool.acquire(timeout=ACQUIRE_TIMEOUT_S) as conn, conn.transaction():
            stored = await claim(conn, shop_id, scope, key, fingerprint(asked), wait_ms=KEY_WAIT_MS)
            if stored is not None:
                return replay(stored)
            try:
                async with conn.transaction():  # a savepoint: a refusal leaves no trace
                    status, model = await action(PostgresUnitOfWork(conn))
                response = JSONResponse(model.model_dump(mode="json"), status)
            except Refused as exc:
                response = problem(exc.status, refusal_body(exc))
            await store(
                conn,
                shop_id,
                scope,
                key,
                status_code=response.status_code,
                body=bytes(response.body),
            )
        if self.runtime.relay is not None:
            self.runtime.relay.wake()
        return response


def replay(stored: StoredResponse) -> Response:
    """The stored response again, byte for byte, marked as a replay."""
    return Response(
        stored.body,
        stored.status_code,
        headers={"Idempotent-Replayed": "true"},
        media_type=PROBLEM if stored.status_code >= 400 else "application/json",
    )


def require_key(given: str | None) -> str:
    """The key; the header's pattern has been checked by then (422), its absence is a 400."""
    if given is None:
        raise Refused("the Idempotency-Key header is required", code="idempotency_key_missing")
    return given


def document_required_keys(openapi: dict[str, Any]) -> dict[str, Any]:
    """`openapi` with the Idempotency-Key header required where a route takes it: the route
    reads it as optional only to answer its absence with a 400 of its own."""
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key":
                    parameter["required"] = True
                    parameter["schema"] = {"type": "string", "pattern": _KEY.pattern}
    return openapi


def fingerprint(payload: dict[str, Any]) -> str:
    """What an idempotent request asked for, independent of key order and spacing."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
