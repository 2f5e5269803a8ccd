"""The coalition sweep on the real broker and database: a shop N with two lots, a redemption and
store credit joins C, and the sweep carries its balances into C's account with the lots keeping
their dates; a second pass writes nothing; a late order dated before the join is carried on the
next pass; after N leaves, C keeps what was carried; a coalition with no rate for the shop's
currency is refused; and `loyalty earn sweep-coalitions --at` sweeps the memberships in earn's
tables."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from earn_support import earn_command, earn_of_its_own
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, order_paid, unique

from services.earn.adapters.ledger import write_entries
from services.earn.adapters.unit_of_work import transactions
from services.earn.domain.expiry import expires_at_for
from services.earn.domain.ledger import NewEntry
from services.earn.handlers import SweepReport, sweep_members
from services.earn.programme import programme_from_text
from services.earn.programme_book import ProgrammeBook
from shared.clock import FixedClock
from shared.events import CloudEvent
from shared.holders import Holders, Membership

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
SINCE = T0 - timedelta(days=400)  # the programmes' first versions
JOIN, LEAVE = T0 + timedelta(days=50), T0 + timedelta(days=120)
E1, E2 = T0 + timedelta(days=200), T0 + timedelta(days=300)
EARN_TOML = """\
time_zone = "Asia/Ho_Chi_Minh"

[currencies.{currency}]
per_amount = {per_amount}
points = 1

[expiry]
mode = "after_months"
months = 12
warn_days = 30
"""
VND_TOML = EARN_TOML.format(currency="VND", per_amount=10000)
USD_TOML = EARN_TOML.format(currency="USD", per_amount=1)
VND = programme_from_text(VND_TOML, source="vnd")
USD = programme_from_text(USD_TOML, source="usd")
# N and C earn in VND; M is in U, whose programme earns in USD only.
C, N, U, M = unique("c"), unique("n"), unique("u"), unique("m")


@dataclass
class World:
    db: asyncpg.Pool
    url: str
    book: ProgrammeBook
    producer: AIOKafkaProducer
    infrastructure: Endpoints

    async def sweep(self, holders: Holders, now: datetime) -> SweepReport:
        return await sweep_members(transactions(self.db), holders, self.book, now=now, chunk=2)

    async def write(self, *entries: NewEntry) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            await write_entries(conn, entries)

    async def ledger(self, customer: str) -> list[tuple[Any, ...]]:
        rows = await self.db.fetch(
            """SELECT shop_id, kind, reason, delta, balance_kind, currency, expires_at, at_shop
               FROM earn.ledger WHERE customer_id = $1 ORDER BY seq""",
            customer,
        )
        return [tuple(r.values()) for r in rows]

    async def balances(self, customer: str) -> dict[str, tuple[int, int]]:
        """Per holder: (points, lifetime earned)."""
        rows = await self.db.fetch(
            """SELECT shop_id, points_balance, lifetime_earned FROM earn.accounts
               WHERE customer_id = $1""",
            customer,
        )
        return {r["shop_id"]: (r["points_balance"], r["lifetime_earned"]) for r in rows}

    async def credit(self, customer: str) -> dict[str, int]:
        rows = await self.db.fetch(
            "SELECT shop_id, balance_minor FROM earn.credit_accounts WHERE customer_id = $1",
            customer,
        )
        return {r["shop_id"]: r["balance_minor"] for r in rows}


@pytest.fixture(scope="module")
async def world(infrastructure: Endpoints, producer: AIOKafkaProducer) -> AsyncIterator[World]:
    book = ProgrammeBook.fixed(VND)
    for shop, programme in ((C, VND), (N, VND), (U, USD), (M, VND)):
        book.add_version(shop, SINCE, programme)
    # Later than the orders the tests pay, so that their points are released at once. The
    # service's own passes run once at start, on nothing (the tests begin once they have:
    # a start pass holding an account's lock would make the tests' sweep skip it); the tests
    # run theirs.
    async with earn_of_its_own(
        infrastructure,
        "sweep",
        programmes=book,
        clock=FixedClock(T0 + timedelta(days=100)),
        coalition_sweep_interval_s=3600,
        expiry_interval_s=3600,
    ) as own:
        await own.passes_started()
        pool = await asyncpg.create_pool(own.database_url, min_size=1, max_size=4)
        try:
            yield World(pool, own.database_url, book, producer, infrastructure)
        finally:
            await pool.close()


def joined(*versions: tuple[str, str | None, datetime]) -> Holders:
    holders = Holders()
    for n, (shop, coalition, start) in enumerate(versions, start=1):
        holders.add(Membership(shop, n, coalition, start))
    return holders


def entry(customer: str, kind: str, delta: int, **fields: Any) -> NewEntry:
    return NewEntry(
        entry_id=unique("e"),
        customer_id=customer,
        kind=kind,
        delta=delta,
        reason=fields.pop("reason", "order.paid"),
        order_id=fields.pop("order_id", None),
        source_event_id=None,
        occurred_at=fields.pop("at", T0),
        shop_id=fields.pop("shop_id", N),
        **fields,
    )


def carried_to(customer: str) -> Callable[[ConsumerRecord[bytes, bytes]], bool]:
    """The customer's points.adjusted events (those the sweep writes)."""

    def accept(record: ConsumerRecord[bytes, bytes]) -> bool:
        if record.key != customer.encode():
            return False
        event: dict[str, Any] = json.loads(record.value)
        return bool(event["type"] == "points.adjusted")

    return accept


def at_shop(shop_id: str, event: CloudEvent[Any]) -> CloudEvent[Any]:
    return event.model_copy(update={"data": event.data.model_copy(update={"shop_id": shop_id})})


async def test_a_joining_shops_lots_and_store_credit_are_carried_once_keeping_their_dates(
    world: World,
) -> None:
    customer = unique("cust")
    await world.write(
        entry(customer, "earned", 100, order_id="o1", expires_at=E1),
        entry(customer, "earned", 50, order_id="o2", expires_at=E2),
        entry(customer, "redeemed", -30, reason="reward"),
        entry(customer, "earned", 5000, reason="cashback", balance_kind="store_credit",
              currency="VND"),
    )  # fmt: skip
    before = await world.ledger(customer)
    holders = joined((N, C, JOIN))

    async with TopicTail(world.infrastructure.kafka_bootstrap, "loyalty.points") as tail:
        first = await world.sweep(holders, JOIN + timedelta(hours=1))
        records = await tail.collect(carried_to(customer), count=6)
    again = await world.sweep(holders, JOIN + timedelta(hours=2))

    moved = (await world.ledger(customer))[len(before) :]
    assert first.balances >= 2
    assert again == SweepReport(0, 0, ())
    assert len(await world.ledger(customer)) == len(before) + 6
    joined_ = "coalition.joined"
    assert moved == [
        (N, "adjusted", joined_, -70, "points", None, None, None),
        (C, "adjusted", joined_, 70, "points", None, E1, N),
        (N, "adjusted", joined_, -50, "points", None, None, None),
        (C, "adjusted", joined_, 50, "points", None, E2, N),
        (N, "adjusted", joined_, -5000, "store_credit", "VND", None, None),
        (C, "adjusted", joined_, 5000, "store_credit", "VND", None, N),
    ]
    assert await world.balances(customer) == {N: (0, 150), C: (120, 0)}
    assert await world.credit(customer) == {N: 0, C: 5000}
    into_c = [d for d in (json.loads(r.value)["data"] for r in records) if d["shop_id"] == C]
    assert [(d["delta"], d["at_shop"], d["reason"]) for d in into_c] == [
        (70, N, joined_),
        (50, N, joined_),
        (5000, N, joined_),
    ]


async def test_a_late_order_dated_before_the_join_is_carried_on_the_next_pass(
    world: World,
) -> None:
    customer = unique("cust")
    await world.write(entry(customer, "earned", 10, expires_at=E1))
    holders = joined((N, C, JOIN))
    await world.sweep(holders, JOIN + timedelta(hours=1))
    paid_at = JOIN - timedelta(days=5)
    late = at_shop(N, order_paid(customer, total="200000", at=paid_at))
    await world.producer.send_and_wait("shop.orders", encoded(late), key=customer.encode())
    await eventually(lambda: world.balances(customer), lambda b: b.get(N, (0, 0))[0] == 20)

    await world.sweep(holders, JOIN + timedelta(days=1))

    ledger = await world.ledger(customer)
    assert await world.balances(customer) == {N: (0, 30), C: (30, 0)}
    order_lot = [row[6] for row in ledger if row[0] == N and row[1] == "earned"][-1]
    assert order_lot is not None
    assert order_lot >= expires_at_for(VND.expiry, paid_at, VND.zone)
    assert [(row[3], row[6]) for row in ledger if row[0] == C] == [(10, E1), (20, order_lot)]


async def test_after_the_shop_leaves_the_coalition_keeps_what_was_carried(world: World) -> None:
    customer = unique("cust")
    holders = joined((N, C, JOIN), (N, None, LEAVE))
    await world.write(entry(customer, "earned", 40, expires_at=E2))
    await world.sweep(holders, JOIN + timedelta(hours=1))
    await world.write(entry(customer, "earned", 15, at=LEAVE + timedelta(days=1), expires_at=E2))

    after = await world.sweep(holders, LEAVE + timedelta(days=2))

    assert N not in after.refused
    assert await world.balances(customer) == {N: (15, 55), C: (40, 0)}


async def test_a_coalition_with_no_rate_for_the_shops_currency_is_refused(world: World) -> None:
    customer = unique("cust")
    await world.write(entry(customer, "earned", 25, shop_id=M, expires_at=E1))
    before = await world.ledger(customer)

    report = await world.sweep(joined((M, U, JOIN)), JOIN + timedelta(hours=1))

    assert report.refused == (M,)
    assert await world.ledger(customer) == before
    assert await world.balances(customer) == {M: (25, 25)}


async def test_the_command_sweeps_the_memberships_earn_recorded(
    world: World, tmp_path: Path
) -> None:
    shop, coalition, customer = unique("n"), unique("c"), unique("cust")
    async with world.db.acquire() as conn:
        await conn.executemany(
            """INSERT INTO earn.shop_programmes
                   (shop_id, kind, version, effective_from, toml, published_by, reason)
               VALUES ($1, 'earn', 1, $2, $3, 'tests', 'tests')""",
            [(shop, SINCE, VND_TOML), (coalition, SINCE, VND_TOML)],
        )
        await conn.execute(
            """INSERT INTO earn.shop_memberships (shop_id, version, coalition_id, effective_from)
               VALUES ($1, 1, $2, $3)""",
            shop,
            coalition,
            JOIN,
        )
    await world.write(entry(customer, "earned", 35, shop_id=shop, expires_at=E1))
    programme = tmp_path / "earn.toml"
    programme.write_text(VND_TOML, encoding="utf-8")
    kafka = world.infrastructure.kafka_bootstrap

    before = await earn_command(world.url, kafka, programme, "sweep-coalitions", "--at",
                                (JOIN - timedelta(hours=1)).isoformat())  # fmt: skip
    said = await earn_command(world.url, kafka, programme, "sweep-coalitions", "--at",
                              (JOIN + timedelta(hours=1)).isoformat())  # fmt: skip

    assert "carried 0 balance(s)" in before
    assert "35 point(s) net" in said
    assert await world.balances(customer) == {shop: (0, 35), coalition: (35, 0)}
