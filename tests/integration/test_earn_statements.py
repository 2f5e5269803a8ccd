"""How many SQL statements earn's shop.orders handler sends per batch, on the real database: a
batch of order.paid costs the same few statements whatever its size, and the change path stays
under its ceilings. Any restructuring of earn must keep these counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from earn_support import caught_up_directory, earn_database
from infrastructure import Endpoints
from pydantic import SecretStr
from support import encoded, unique

from services.earn.bootstrap import definition
from services.earn.programme import Programme, parse_programme
from services.earn.settings import EarnSettings
from shared.clock import FixedClock
from shared.consumer import BatchHandler, Incoming
from shared.events import CloudEvent, make_event
from shared.events.catalog import TOPICS

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
USD = {"USD": {"per_amount": Decimal(1), "points": 1}}
PLAIN = parse_programme({"currencies": USD})
WINDOW = parse_programme(
    {"currencies": USD, "pending": {"return_window_days": 2, "completion_timeout_days": 3}}
)
WINDOW_CASHBACK = parse_programme(
    {
        "currencies": USD,
        "pending": {"return_window_days": 2, "completion_timeout_days": 3},
        "cashback": {"percent": {"USD": Decimal(3)}},
    }
)

REFERRALS = parse_programme(
    {
        "currencies": USD,
        "actions": {"referral": {"referrer_points": 20, "referred_points": 10, "limit": 5}},
    }
)


class CountingConnection(asyncpg.Connection):
    """A connection that counts the round trips it makes: query loggers see every execute and
    fetch, but not COPY, which is counted here."""

    copies = 0

    async def copy_records_to_table(self, *args: Any, **kwargs: Any) -> Any:
        self.copies += 1
        return await super().copy_records_to_table(*args, **kwargs)


@dataclass
class Counted:
    conn: CountingConnection
    queries: list[str]

    @property
    def statements(self) -> int:
        return len(self.queries) + self.conn.copies

    def reset(self) -> None:
        self.queries.clear()
        self.conn.copies = 0


@pytest.fixture(scope="module")
async def database(infrastructure: Endpoints) -> AsyncIterator[str]:
    async with earn_database(infrastructure, "loyalty_statements") as url:
        yield url


@pytest.fixture
async def counted(database: str) -> AsyncIterator[Counted]:
    conn = await asyncpg.connect(database, connection_class=CountingConnection)
    queries: list[str] = []
    conn.add_query_logger(lambda record: queries.append(record.query))
    try:
        yield Counted(conn, queries)
    finally:
        await conn.close()


def handler_of(programme: Programme, url: str) -> BatchHandler:
    service = definition(
        EarnSettings(database_url=SecretStr(url)),
        clock=FixedClock(T0 + timedelta(days=1)),
        programme=programme,
        directory=caught_up_directory(),
    )
    return service.handlers["shop.orders"]


def incoming(event: CloudEvent[Any], offset: int) -> Incoming:
    return Incoming("shop.orders", 0, offset, event.subject.encode(), encoded(event), (), event)


def paid(order_id: str, customer_id: str) -> CloudEvent[Any]:
    money = {"amount": "25.00", "currency": "USD"}
    line = {"sku": "s", "name": "s", "category": "c", "quantity": 1, "unit_price": "25.00"}
    data = {
        "order_id": order_id,
        "customer_id": customer_id,
        "currency": "USD",
        "items": [line],
        "totals": {"total": money},
    }
    return _event("order.paid", data)


def changed(type_: str, order_id: str, customer_id: str) -> CloudEvent[Any]:
    data: dict[str, Any] = {"order_id": order_id, "customer_id": customer_id}
    if type_ == "order.refunded":
        data |= {"refund": {"amount": "5.00", "currency": "USD"}, "full": False}
    return _event(type_, data)


def _event(type_: str, data: dict[str, Any]) -> CloudEvent[Any]:
    model = TOPICS["shop.orders"][type_].model_validate(data)
    return make_event(type_, source="tests/shop", subject=data["customer_id"], data=model, time=T0)


async def statements_of(
    counted: Counted, handler: BatchHandler, events: Sequence[CloudEvent[Any]]
) -> int:
    """The statements the handler sends for one batch, inside the caller's transaction."""
    async with counted.conn.transaction():
        await asyncio.sleep(0)  # query loggers are called soon after, not during, the query
        counted.reset()
        refused = await handler(counted.conn, [incoming(e, i) for i, e in enumerate(events)])
        await asyncio.sleep(0)
        sent = counted.statements
    assert list(refused) == []
    return sent


def orders(n: int) -> list[tuple[str, str]]:
    return [(unique("o"), unique("c")) for _ in range(n)]


@pytest.mark.parametrize(("programme", "expected"), [(PLAIN, 9), (WINDOW, 7), (WINDOW_CASHBACK, 8)])
async def test_a_batch_of_payments_costs_the_same_statements_whatever_its_size(
    counted: Counted, database: str, programme: Programme, expected: int
) -> None:
    handler = handler_of(programme, database)
    # The first batch on a connection also reads the types of its arguments, once.
    await statements_of(counted, handler, [paid(o, c) for o, c in orders(2)])
    for n in (1, 200):
        sent = await statements_of(counted, handler, [paid(o, c) for o, c in orders(n)])
        assert sent == expected, f"{n} payments"


# 50 changes cost what one does: the orders locked and read once, each table written once (the
# per-event path this replaced sent 251, 301 and 101).
CHANGE_CEILINGS = {"order.refunded": 10, "order.cancelled": 10, "order.completed": 6}


@pytest.mark.parametrize("type_", sorted(CHANGE_CEILINGS))
async def test_a_batch_of_changes_costs_a_few_statements_whatever_its_size(
    counted: Counted, database: str, type_: str
) -> None:
    handler = handler_of(PLAIN, database)
    await statements_of(counted, handler, [paid(o, c) for o, c in orders(2)])
    known = orders(50)
    await statements_of(counted, handler, [paid(o, c) for o, c in known])
    sent = await statements_of(counted, handler, [changed(type_, o, c) for o, c in known])
    assert 0 < sent <= CHANGE_CEILINGS[type_]


# Deciding the awards (decided, counters created and locked, counters saved, awards recorded)
# and marking the referrals rewarded; the awards' entries join the batch's one ledger write.
REFERRALS_COMPLETED = 9 + 6


async def test_first_payments_completing_referrals_cost_a_few_statements_whatever_their_number(
    counted: Counted, database: str
) -> None:
    handler = handler_of(REFERRALS, database)
    await statements_of(counted, handler, [paid(o, c) for o, c in orders(2)])
    for n in (1, 50):
        known = orders(n)
        await counted.conn.execute(
            """INSERT INTO earn.customers (shop_id, customer_id, referrer_id, referral_event_id,
                                           referral_at)
               SELECT 'default', c, 'r-' || c, 'e-' || c, $2 FROM unnest($1::text[]) AS c""",
            [c for _, c in known],
            T0 - timedelta(days=1),
        )
        sent = await statements_of(counted, handler, [paid(o, c) for o, c in known])
        rewarded = await counted.conn.fetchval(
            """SELECT count(*) FROM earn.ledger
               WHERE reason = 'referral' AND customer_id = ANY($1::text[])""",
            [c for _, c in known] + [f"r-{c}" for _, c in known],
        )
        assert (sent, rewarded) == (REFERRALS_COMPLETED, 2 * n), f"{n} referrals"
