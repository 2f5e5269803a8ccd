"""Stored outcomes of idempotent requests (earn.idempotency_keys), in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from services.earn.adapters.ledger import SCHEMA
from services.earn.refusals import Conflict
from shared.db import Connection
from shared.errors import Bug


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: bytes  # as first sent


async def claim(
    conn: Connection, shop_id: str, scope: str, key: str, fingerprint: str, *, wait_ms: int
) -> StoredResponse | None:
    """Take the shop's `key` for this request, or find the response stored for it.

    None: the key is new and now held by the caller's transaction, which handles the request
    and calls `store`. A request holding the same key in another transaction is waited for
    (up to `wait_ms`), then its response is returned. Raises Conflict when the key was used
    for a different request, or is still held after `wait_ms`.
    """
    await conn.execute(f"SET LOCAL lock_timeout = {int(wait_ms)}")
    try:
        taken = await conn.fetchval(
            f"""INSERT INTO {SCHEMA}.idempotency_keys (shop_id, scope, key, fingerprint)
                VALUES ($4, $1, $2, $3) ON CONFLICT DO NOTHING RETURNING true""",
            scope,
            key,
            fingerprint,
            shop_id,
        )
    except asyncpg.LockNotAvailableError:
        raise Conflict(
            "a request with this Idempotency-Key is still being handled; retry in a moment",
            code="idempotency_key_in_progress",
        ) from None
    await conn.execute("SET LOCAL lock_timeout TO DEFAULT")
    if taken:
        return None
    row = await conn.fetchrow(
        f"""SELECT fingerprint, status_code, response FROM {SCHEMA}.idempotency_keys
            WHERE shop_id = $3 AND scope = $1 AND key = $2""",
        scope,
        key,
        shop_id,
    )
    if row is None or row["status_code"] is None:
        raise Bug(f"idempotency key {scope}/{key} is committed without its response")
    if row["fingerprint"] != fingerprint:
        raise Conflict(
            "this Idempotency-Key was already used with a different request; "
            "use a new key for a new request",
            code="idempotency_key_reused",
        )
    return StoredResponse(row["status_code"], row["response"].encode())


async def store(
    conn: Connection, shop_id: str, scope: str, key: str, *, status_code: int, body: bytes
) -> None:
    """Record the response of the request that holds `key` (see `claim`): the JSON body as
    sent, so that a replay sends the same bytes."""
    await conn.execute(
        f"""UPDATE {SCHEMA}.idempotency_keys SET status_code = $3, response = $4
            WHERE shop_id = $5 AND scope = $1 AND key = $2""",
        scope,
        key,
        status_code,
        body.decode(),
        shop_id,
    )
