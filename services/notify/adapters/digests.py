"""Pending points digests keyed again when a customer's time zone is learnt or changes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.notify.adapters.projections import SCHEMA, Member, member_arrays
from services.notify.adapters.schedule import Claimed, claimed_row, log_attempts
from services.notify.domain import digests
from services.notify.domain.triggers import DIGEST_DELAY
from shared.db import Connection


async def rezone_digests(
    conn: Connection, zones: Mapping[Member, str], now: datetime
) -> list[Claimed]:
    """Key these customers' pending digests by their local day in the zone now known: rows of
    one day merge into the first (credits added up, due at the earliest); a day whose digest
    has already gone suppresses them as duplicates, which are returned."""
    rows = await conn.fetch(
        f"""SELECT * FROM {SCHEMA}.scheduled
            WHERE trigger = 'points.digest' AND status = 'pending'
              AND (shop_id, customer_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
            ORDER BY id FOR UPDATE""",
        *member_arrays(list(zones)),
    )
    by_id = {r["id"]: claimed_row(r) for r in rows}
    groups = digests.regroup([_pending_digest(m) for m in by_id.values()], zones)
    if not groups:
        return []
    holders: dict[tuple[str, str], int] = {
        (r["shop_id"], r["dedup_key"]): r["id"]
        for r in await conn.fetch(
            f"""SELECT id, shop_id, dedup_key FROM {SCHEMA}.scheduled
                WHERE (shop_id, dedup_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))""",
            [g.shop_id for g in groups],
            [g.key for g in groups],
        )
    }
    duplicates: list[Claimed] = []
    merged: list[tuple[Claimed, Claimed]] = []  # (merged away, survivor)
    survivors: list[tuple[Claimed, str, dict[str, Any], datetime]] = []
    for group in groups:
        members = [by_id[d.id] for d in group.members]
        holder = holders.get((group.shop_id, group.key))
        if holder is not None and holder not in by_id:  # that day's digest went, or is going
            duplicates += members
            continue
        ids = [m.id for m in members]
        survivor = by_id[holder] if holder in ids else members[0]
        merged += [(m, survivor) for m in members if m is not survivor]
        payload = {
            **survivor.payload,
            "earned": sum(int(m.payload["earned"]) for m in members),
            "day": group.day.isoformat(),
            "first_credit": min(d.first_credit for d in group.members).isoformat(),
        }
        survivors.append((survivor, group.key, payload, min(m.due_at for m in members)))
    await _retire(conn, [m for m, _ in merged], "cancelled", now)
    await _retire(conn, duplicates, "suppressed", now)
    # Keys may move in a cycle (one row's new key is another's old): free them all first.
    await conn.execute(
        f"""UPDATE {SCHEMA}.scheduled SET dedup_key = dedup_key || ':rekeying'
            WHERE id = ANY($1::bigint[])""",
        [s.id for s, _, _, _ in survivors],
    )
    await conn.executemany(
        f"""UPDATE {SCHEMA}.scheduled SET dedup_key = $2, payload = $3::jsonb, due_at = $4,
                updated_at = $5
            WHERE id = $1""",
        [(s.id, key, json.dumps(p), due, now) for s, key, p, due in survivors],
    )
    await log_attempts(
        conn,
        [(m, "cancelled", f"merged into {s.notification_id}") for m, s in merged]
        + [(m, "suppressed", "duplicate") for m in duplicates],
        now,
    )
    return duplicates


def _pending_digest(message: Claimed) -> digests.PendingDigest:
    first = message.payload.get("first_credit")
    return digests.PendingDigest(
        id=message.id,
        dedup_key=message.dedup_key,
        shop_id=message.shop_id,
        customer_id=message.customer_id,
        channel=message.channel,
        first_credit=(
            datetime.fromisoformat(str(first)) if first else message.due_at - DIGEST_DELAY
        ),
    )


async def _retire(
    conn: Connection, messages: Sequence[Claimed], status: str, now: datetime
) -> None:
    if messages:
        await conn.execute(
            f"""UPDATE {SCHEMA}.scheduled SET status = $2, updated_at = $3
                WHERE id = ANY($1::bigint[])""",
            [m.id for m in messages],
            status,
            now,
        )
