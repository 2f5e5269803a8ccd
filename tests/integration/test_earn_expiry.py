"""Expiry on the real broker and database: earnings expire oldest first with a redemption in
between, a warning goes out once before, concurrent passes expire each account once, and
`loyalty earn expire --at` expires a whole balance after months without an order; points given
after a pass make the account due again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from earn_support import earn_command, earn_of_its_own
from infrastructure import Endpoints
from support import TopicTail, encoded, eventually, order_paid, unique

from services.earn.adapters.ledger import write_entries
from services.earn.adapters.unit_of_work import transactions
from services.earn.domain.ledger import NewEntry
from services.earn.handlers import expire_due
from services.earn.programme import Programme, parse_programme
from services.earn.programme_book import ProgrammeBook
from shared.clock import FixedClock

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
VND = {"VND": {"per_amount": Decimal(10_000), "points": 1}}
PROGRAMME = parse_programme(
    {
        "time_zone": "Asia/Ho_Chi_Minh",
        "currencies": VND,
        "expiry": {"mode": "after_months", "months": 12, "warn_days": 30},
    }
)


@dataclass
class Earn:
    db: asyncpg.Pool
    url: str
    producer: AIOKafkaProducer
    infrastructure: Endpoints

    async def entries(self, customer: str) -> list[tuple[str, int, int]]:
        rows = await self.db.fetch(
            """SELECT kind, delta, balance_after FROM earn.ledger
               WHERE customer_id = $1 ORDER BY seq""",
            customer,
        )
        return [(r["kind"], r["delta"], r["balance_after"]) for r in rows]

    async def pay(self, customer: str, total: str, at: datetime) -> None:
        event = order_paid(customer, total=total, at=at)
        await self.producer.send_and_wait("shop.orders", encoded(event), key=customer.encode())

    async def write(self, *entries: NewEntry) -> None:
        async with self.db.acquire() as conn, conn.transaction():
            await write_entries(conn, entries)


@pytest.fixture(scope="module")
async def earn(infrastructure: Endpoints, producer: AIOKafkaProducer) -> AsyncIterator[Earn]:
    # Later than the orders the tests pay, so that their points are released at once.
    clock = FixedClock(T0 + timedelta(days=100))
    async with earn_of_its_own(
        infrastructure,
        "expiry",
        programme=PROGRAMME,
        clock=clock,
        expiry_interval_s=3600,  # the tests run passes with their own times
    ) as own:
        pool = await asyncpg.create_pool(own.database_url, min_size=1, max_size=6)
        try:
            yield Earn(pool, own.database_url, producer, infrastructure)
        finally:
            await pool.close()


def expiry_events_of(customer: str) -> Callable[[ConsumerRecord[bytes, bytes]], bool]:
    def accept(record: ConsumerRecord[bytes, bytes]) -> bool:
        types = ("points.expiring", "points.expired")
        return record.key == customer.encode() and json.loads(record.value)["type"] in types

    return accept


def redeemed(customer: str, points: int, at: datetime) -> NewEntry:
    return NewEntry(unique("redeem"), customer, "redeemed", -points, "reward", None, None, at)


async def test_earnings_expire_oldest_first_after_a_warning_sent_once(earn: Earn) -> None:
    customer = unique("c")
    second = T0 + timedelta(days=61)  # 2 May 2026
    await earn.pay(customer, "1000000", T0)  # 100 points, expire 2 March 2027
    await earn.pay(customer, "500000", second)  # 50 points, expire 2 May 2027
    await eventually(lambda: earn.entries(customer), lambda e: len(e) == 2)
    await earn.write(redeemed(customer, 120, T0 + timedelta(days=90)))

    async with TopicTail(earn.infrastructure.kafka_bootstrap, "loyalty.points") as points:
        # 20 days before the first earning's date: all of it was spent, nothing to warn of.
        await expire_due(
            transactions(earn.db),
            ProgrammeBook.fixed(PROGRAMME),
            now=T0.replace(year=2027) - timedelta(20),
            chunk=10,
        )
        # 20 days before the second's: 30 of its 50 points are left.
        warn_at = second.replace(year=2027) - timedelta(days=20)
        await expire_due(
            transactions(earn.db), ProgrammeBook.fixed(PROGRAMME), now=warn_at, chunk=10
        )
        await expire_due(
            transactions(earn.db),
            ProgrammeBook.fixed(PROGRAMME),
            now=warn_at + timedelta(hours=1),
            chunk=10,
        )
        await expire_due(
            transactions(earn.db),
            ProgrammeBook.fixed(PROGRAMME),
            now=second.replace(year=2027),
            chunk=10,
        )
        await expire_due(
            transactions(earn.db),
            ProgrammeBook.fixed(PROGRAMME),
            now=second.replace(year=2027, day=20),
            chunk=10,
        )
        published = await points.collect(expiry_events_of(customer), count=2)
        published += await points.settle(expiry_events_of(customer), seconds=0.5)

    assert await earn.entries(customer) == [
        ("earned", 100, 100),
        ("earned", 50, 150),
        ("redeemed", -120, 30),
        ("expired", -30, 0),
    ]
    bodies = [json.loads(r.value) for r in published]
    assert [b["type"] for b in bodies] == ["points.expiring", "points.expired"]
    warning, expired = (b["data"] for b in bodies)
    assert (warning["points"], warning["balance"]) == (30, 30)
    assert datetime.fromisoformat(warning["expires_at"]) == second.replace(year=2027)
    assert (expired["delta"], expired["balance_after"]) == (-30, 0)


async def test_concurrent_passes_expire_each_account_once(earn: Earn) -> None:
    customers = [unique("c") for _ in range(20)]
    past = T0 - timedelta(days=400)
    await earn.write(
        *(
            NewEntry(f"grant:{c}", c, "earned", 10, "grant", None, None, past, expires_at=T0)
            for c in customers
        )
    )

    await asyncio.gather(
        *(
            expire_due(transactions(earn.db), ProgrammeBook.fixed(PROGRAMME), now=T0, chunk=3)
            for _ in range(4)
        )
    )

    rows = await earn.db.fetch(
        """SELECT customer_id, count(*) AS n, sum(delta) AS total FROM earn.ledger
           WHERE customer_id = ANY($1::text[]) AND kind = 'expired' GROUP BY customer_id""",
        customers,
    )
    assert sorted((r["customer_id"], r["n"], r["total"]) for r in rows) == sorted(
        (c, 1, -10) for c in customers
    )


async def test_points_given_after_a_pass_make_the_account_due_again(earn: Earn) -> None:
    """A pass sets when to look at an account next from the points it had; points given later
    (any positive entry, not only orders) bring that time forward to now."""
    customer = unique("c")
    past = T0 - timedelta(days=400)
    await earn.write(
        NewEntry(f"grant:{customer}", customer, "earned", 10, "grant", None, None, past,
                 expires_at=T0),
        NewEntry(f"spend:{customer}", customer, "redeemed", -4, "reward", None, None, past),
    )  # fmt: skip
    due = "SELECT expiry_check_at <= $2 FROM earn.accounts WHERE customer_id = $1"
    await expire_due(transactions(earn.db), ProgrammeBook.fixed(PROGRAMME), now=T0, chunk=10)
    due_after_pass = await earn.db.fetchval(due, customer, T0 + timedelta(days=3650))
    later = T0 + timedelta(days=10)
    await earn.write(
        NewEntry(f"adjust:{customer}", customer, "adjusted", 7, "goodwill", None, None, T0,
                 expires_at=later),
    )  # fmt: skip
    due_after_points = await earn.db.fetchval(due, customer, T0 - timedelta(days=3650))
    await expire_due(transactions(earn.db), ProgrammeBook.fixed(PROGRAMME), now=later, chunk=10)

    assert due_after_pass is False  # nothing left to expire: never due by itself
    assert due_after_points is True
    assert await earn.entries(customer) == [
        ("earned", 10, 10),
        ("redeemed", -4, 6),
        ("expired", -6, 0),
        ("adjusted", 7, 7),
        ("expired", -7, 0),
    ]


async def test_expire_command_expires_a_whole_balance_after_months_without_an_order(
    earn: Earn, tmp_path: Path
) -> None:
    customer = unique("c")
    await earn.pay(customer, "300000", T0)  # 30 points, last order T0
    await eventually(lambda: earn.entries(customer), lambda e: len(e) == 1)
    programme = tmp_path / "programme.toml"
    programme.write_text(
        'time_zone = "Asia/Ho_Chi_Minh"\n[currencies.VND]\nper_amount = 10000\n'
        '[expiry]\nmode = "inactivity"\nmonths = 6\nwarn_days = 0\n'
    )
    inactive: Programme = parse_programme(
        {"currencies": VND, "expiry": {"mode": "inactivity", "months": 6, "warn_days": 0}}
    )
    early = await expire_due(
        transactions(earn.db),
        ProgrammeBook.fixed(inactive),
        now=T0.replace(month=9, day=1),
        chunk=500,
    )
    assert early.expired_points == 0

    kafka = earn.infrastructure.kafka_bootstrap
    said = await earn_command(earn.url, kafka, programme, "expire", "--at", "2026-09-02T03:00Z")

    assert "point(s) expired" in said
    assert await earn.entries(customer) == [("earned", 30, 30), ("expired", -30, 0)]
    reason = await earn.db.fetchval(
        "SELECT reason FROM earn.ledger WHERE customer_id = $1 AND kind = 'expired'", customer
    )
    assert reason == "inactivity"
