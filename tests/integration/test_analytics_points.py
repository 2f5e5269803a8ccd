"""Analytics counts points, not store credit: cashback entries share loyalty.points but are
money in minor units, and would swell points issued and the liability."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from support import encoded, eventually, unique

from services.analytics.adapters.customers import Scope, create_held
from shared.events import PointsEarned, make_event


def earned(customer: str, delta: int, **credit: Any) -> Any:
    data = PointsEarned(
        entry_id=unique("e"),
        customer_id=customer,
        delta=delta,
        balance_after=delta,
        reason="cashback" if credit else "order.paid",
        **credit,
    )
    return make_event(
        "points.earned", source="tests/earn", subject=customer, data=data, time=datetime.now(UTC)
    )


async def test_store_credit_entries_make_a_member_but_no_points(
    analytics: httpx.AsyncClient, db: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    customer = unique("c")
    credit = earned(customer, 2590, balance_kind="store_credit", currency="VND")
    points = earned(customer, 25)
    for event in (credit, points):  # one partition: the points entry comes second
        await producer.send_and_wait("loyalty.points", encoded(event), key=customer.encode())

    rows = await eventually(
        lambda: db.fetch(
            "SELECT entry_id, delta FROM analytics.points WHERE customer_id = $1", customer
        ),
        lambda found: len(found) == 1,
    )

    assert [(r["entry_id"], r["delta"]) for r in rows] == [(points.data.entry_id, 25)]
    assert (
        await db.fetchval("SELECT count(*) FROM analytics.members WHERE customer_id = $1", customer)
        == 1
    )


def scans_of(plan: Any, relation: str) -> list[tuple[str, str | None]]:
    """The scans of `relation` in an EXPLAIN (FORMAT JSON) plan: (kind, index)."""
    found = []
    if isinstance(plan, dict):
        if plan.get("Relation Name") == relation and "Scan" in plan.get("Node Type", ""):
            found.append((plan["Node Type"], plan.get("Index Name")))
        for value in plan.values():
            found += scans_of(value, relation)
    elif isinstance(plan, list):
        for value in plan:
            found += scans_of(value, relation)
    return found


async def test_a_segments_points_at_their_shop_are_read_from_the_index_alone(
    analytics: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """The report joins its customers to their points by account and by the shop where each
    entry happened (at_shop): the index by customer must hold at_shop, or PostgreSQL reads
    the table for it, and chose a scan of every points row instead."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    scope = Scope(
        schema="analytics", starts_at=at, ends_at=at, time_zone="UTC", currency="VND",
        shop=None, tier=None, cohort_start=None, cohort_end=None,
        churn_after=timedelta(days=90), attribution=timedelta(days=7),
    )  # fmt: skip
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(
            "CREATE TEMP TABLE pop ON COMMIT DROP AS "
            "SELECT 's'::text AS shop_id, 'c'::text AS customer_id, 's'::text AS holder_id"
        )
        # Neither a scan of the table nor a bitmap of the index: then PostgreSQL plans an
        # index-only scan exactly when the index holds every column the join reads.
        await conn.execute("SET LOCAL enable_seqscan = off")
        await conn.execute("SET LOCAL enable_bitmapscan = off")
        plan = json.loads(
            await conn.fetchval(
                f"""EXPLAIN (FORMAT JSON) SELECT sum(pt.delta) FILTER (WHERE pt.kind = 'earned')
                    FROM pop p JOIN analytics.points pt ON {scope.points_of()}
                    WHERE pt.at < $1""",
                at,
            )
        )

    assert scans_of(plan, "points") == [("Index Only Scan", "points_by_customer")]


async def test_a_shops_report_reads_the_points_of_its_holder_alone_from_the_index(
    analytics: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """A report of one shop knows who holds its customers' accounts (the shop, or its
    coalition): it names that holder, so PostgreSQL reads that holder's entries from the
    index by customer instead of every points row. `held` has statistics, or PostgreSQL's
    guess of its size made the population's plan costly enough to be compiled by JIT."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    shop, member, coalition = unique("shop"), unique("member"), unique("coalition")
    scope = Scope(
        schema="analytics", starts_at=at, ends_at=at, time_zone="UTC", currency="VND",
        shop=None, tier=None, cohort_start=None, cohort_end=None,
        churn_after=timedelta(days=90), attribution=timedelta(days=7),
    )  # fmt: skip
    async with db.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute(
                """INSERT INTO analytics.shop_memberships (shop_id, version, coalition_id,
                                                           effective_from)
                   VALUES ($1, 1, $2, $3)""",
                member,
                coalition,
                at - timedelta(days=30),
            )
            every_shop = await create_held(conn, scope)
            analysed = await conn.fetchval(
                "SELECT reltuples FROM pg_class WHERE oid = 'held'::regclass"
            )
            await conn.execute("DROP TABLE held")
            of_member = await create_held(conn, replace(scope, shop=member))
            await conn.execute("DROP TABLE held")
            of_shop = await create_held(conn, replace(scope, shop=shop))
            await conn.execute(
                "CREATE TEMP TABLE pop ON COMMIT DROP AS "
                "SELECT $1::text AS shop_id, 'c'::text AS customer_id, $1::text AS holder_id",
                shop,
            )
            await conn.execute("SET LOCAL enable_seqscan = off")
            await conn.execute("SET LOCAL enable_bitmapscan = off")
            plan = json.loads(
                await conn.fetchval(
                    f"""EXPLAIN (FORMAT JSON) SELECT sum(pt.delta)
                        FROM pop p JOIN analytics.points pt ON {of_shop.points_of("$2")}
                        WHERE pt.at < $1""",
                    at,
                    *of_shop.holder_args(),
                )
            )
        finally:
            await transaction.rollback()

    assert analysed >= 0  # -1 until analysed
    assert (every_shop.holder, of_member.holder, of_shop.holder) == (None, coalition, shop)
    assert every_shop.points_of("$2") == scope.points_of()  # no holder: no parameter
    assert [c for c in index_conditions(plan, "points") if f"shop_id = '{shop}'" in c]


def index_conditions(plan: Any, relation: str) -> list[str]:
    """The index conditions of the scans of `relation` in an EXPLAIN (FORMAT JSON) plan."""
    found = []
    if isinstance(plan, dict):
        if plan.get("Relation Name") == relation and "Index Cond" in plan:
            found.append(plan["Index Cond"])
        for value in plan.values():
            found += index_conditions(value, relation)
    elif isinstance(plan, list):
        for value in plan:
            found += index_conditions(value, relation)
    return found
