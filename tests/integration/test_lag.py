"""A producer learns that earn applied its record from earn's consumer group: `loyalty publish`
says where the record was written, `loyalty lag` where the group stands."""

from __future__ import annotations

import asyncio
import json
import re

import asyncpg
from earn_support import earn_of_its_own
from infrastructure import Endpoints
from support import eventually, loyalty_command, unique

from services.lag import Position, positions
from shared.runtime import consumer_group


def loyalty(infrastructure: Endpoints, prefix: str, *args: str) -> str:
    done = loyalty_command(
        *args,
        env={
            "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap,
            "LOYALTY_CONSUMER_GROUP_PREFIX": prefix,
        },
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_record_is_applied_once_the_group_committed_past_its_offset(
    infrastructure: Endpoints,
) -> None:
    customer = unique("lag")
    async with earn_of_its_own(infrastructure, "lag") as earn:
        prefix = earn.runtime.settings.consumer_group_prefix
        said = await asyncio.to_thread(
            loyalty, infrastructure, prefix, "publish", "order.paid", "--customer", customer
        )
        where = re.search(r"published to shop\.orders partition (\d+) offset (\d+):", said)
        assert where, said
        partition, offset = int(where[1]), int(where[2])
        group = consumer_group(earn.runtime.settings, "earn", "shop.orders")

        async def position() -> Position:
            found = await positions(
                infrastructure.kafka_bootstrap, {("earn", "shop.orders"): group}
            )
            return next(p for p in found if p.partition == partition)

        await eventually(position, lambda p: p.applied(offset), timeout=30)

        db = await asyncpg.connect(earn.database_url)
        try:
            # The order, not its ledger entry: points are available at once only when the
            # event's time is not ahead of earn's clock, and the publishing process's may be.
            recorded = await db.fetchval(
                "SELECT count(*) FROM earn.orders WHERE customer_id = $1", customer
            )
        finally:
            await db.close()
        assert recorded == 1

        rows = [
            json.loads(line)
            for line in (
                await asyncio.to_thread(
                    loyalty,
                    infrastructure,
                    prefix,
                    "lag",
                    "earn",
                    "--topic",
                    "shop.orders",
                    "--json",
                )
            ).splitlines()
        ]
        mine = next(r for r in rows if r["partition"] == partition)
        assert mine["group"] == group
        assert mine["committed"] > offset
        assert mine["lag"] == mine["end"] - mine["committed"]
        assert {r["topic"] for r in rows} == {"shop.orders"}


async def test_a_group_that_never_committed_has_applied_nothing(infrastructure: Endpoints) -> None:
    found = await positions(infrastructure.kafka_bootstrap, {("earn", "shop.orders"): unique("g")})
    assert found, "shop.orders has partitions"
    assert all(p.committed is None and not p.applied(0) and p.lag == p.end for p in found)
