"""A journal of received events, for services whose rules for a topic are not written yet."""

from __future__ import annotations

from collections.abc import Sequence

from shared.consumer import BatchHandler, Incoming, Rejection
from shared.db import Connection

DEFAULT_SHOP = "default"


def journal_handler(schema: str) -> BatchHandler:
    """A batch handler that records every new event in <schema>.received_events.

    The table is created by the service's own migrations (its columns are listed below).
    """

    async def record(conn: Connection, events: Sequence[Incoming]) -> list[Rejection]:
        rows = [
            (
                e.event.id,
                e.topic,
                e.event.type,
                getattr(e.event.data, "shop_id", DEFAULT_SHOP),
                e.event.subject,
                e.event.time,
            )
            for e in events
            if e.event is not None
        ]
        await conn.copy_records_to_table(
            "received_events",
            schema_name=schema,
            columns=["event_id", "topic", "type", "shop_id", "customer_id", "event_time"],
            records=rows,
        )
        return []

    return record
