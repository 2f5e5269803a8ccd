"""`loyalty earn release --at`: the pending points due by then enter the ledger, once; those
not yet due stay pending."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from earn_support import earn_command, earn_of_its_own
from infrastructure import Endpoints
from support import encoded, eventually, order_paid, unique

from services.earn.programme import parse_programme
from shared.clock import FixedClock

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
PROGRAMME_TOML = (
    "[currencies.VND]\nper_amount = 10000\n"
    "[pending]\nreturn_window_days = 14\ncompletion_timeout_days = 30\n"
)
PROGRAMME = parse_programme(
    {
        "currencies": {"VND": {"per_amount": Decimal(10_000)}},
        "pending": {"return_window_days": 14, "completion_timeout_days": 30},
    }
)


@dataclass
class Earn:
    db: asyncpg.Pool
    url: str
    infrastructure: Endpoints


@pytest.fixture(scope="module")
async def earn(infrastructure: Endpoints) -> AsyncIterator[Earn]:
    # The service's own clock stays before anything is due: only the command releases.
    async with earn_of_its_own(
        infrastructure,
        "release",
        programme=PROGRAMME,
        clock=FixedClock(T0),
        release_interval_s=3600,
    ) as own:
        pool = await asyncpg.create_pool(own.database_url, min_size=1, max_size=2)
        try:
            yield Earn(pool, own.database_url, infrastructure)
        finally:
            await pool.close()


async def release_command(earn: Earn, programme: Path, at: datetime) -> str:
    kafka = earn.infrastructure.kafka_bootstrap
    return await earn_command(earn.url, kafka, programme, "release", "--at", at.isoformat())


async def test_release_command_makes_the_points_due_available_once(
    earn: Earn, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    customer = unique("c")
    event = order_paid(customer, total="300000", at=T0)  # 30 points, due 44 days later
    await producer.send_and_wait("shop.orders", encoded(event), key=customer.encode())
    account = "SELECT points_balance, points_pending FROM earn.accounts WHERE customer_id = $1"
    await eventually(lambda: earn.db.fetchrow(account, customer), lambda r: r is not None)
    programme = tmp_path / "programme.toml"
    programme.write_text(PROGRAMME_TOML)

    early = await release_command(earn, programme, T0 + timedelta(days=43))
    pending = await earn.db.fetchrow(account, customer)
    due = await release_command(earn, programme, T0 + timedelta(days=45))
    again = await release_command(earn, programme, T0 + timedelta(days=46))

    assert pending is not None
    assert tuple(pending) == (0, 30)
    assert "of 0 order(s)" in early
    assert "of 1 order(s)" in due
    after = await earn.db.fetchrow(account, customer)
    assert after is not None
    assert tuple(after) == (30, 0)
    entries = await earn.db.fetch(
        "SELECT kind, delta FROM earn.ledger WHERE customer_id = $1", customer
    )
    assert [tuple(e) for e in entries] == [("earned", 30)]
    assert "of 0 order(s)" in again
