"""A running earn picks up a changed programme file without a restart, and keeps the
programme in force when the new file is not valid."""

from __future__ import annotations

from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from earn_support import earn_of_its_own
from infrastructure import Endpoints
from support import encoded, eventually, order_paid, unique

from shared import metrics

RATE = "[currencies.VND]\nper_amount = {per_amount}\npoints = 1\n"


async def test_a_changed_programme_applies_to_the_next_orders_and_a_broken_one_is_refused(
    infrastructure: Endpoints, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    path = tmp_path / "programme.toml"
    path.write_text(RATE.format(per_amount=10000), encoding="utf-8")
    refused_before = metrics.PROGRAMME_RELOADS.labels("earn", "refused")._value.get()
    applied_before = metrics.PROGRAMME_RELOADS.labels("earn", "applied")._value.get()
    customer = unique("c")

    async def points_so_far(db: asyncpg.Connection) -> list[int]:
        rows = await db.fetch(
            "SELECT delta FROM earn.ledger WHERE customer_id = $1 ORDER BY seq", customer
        )
        return [r["delta"] for r in rows]

    async def seen(outcome: str) -> float:
        return float(metrics.PROGRAMME_RELOADS.labels("earn", outcome)._value.get())

    async def pay() -> None:
        event = order_paid(customer, total="100000", currency="VND")
        await producer.send_and_wait("shop.orders", encoded(event), key=customer.encode())

    async with earn_of_its_own(
        infrastructure, "reload", programme_file=path, programme_poll_s=0.1
    ) as own:
        db = await asyncpg.connect(own.database_url)
        try:
            await pay()
            await eventually(lambda: points_so_far(db), lambda p: p == [10])

            path.write_text(RATE.format(per_amount=5000), encoding="utf-8")
            await eventually(lambda: seen("applied"), lambda n: n == applied_before + 1)
            await pay()
            await eventually(lambda: points_so_far(db), lambda p: p == [10, 20])

            path.write_text(RATE.format(per_amount=0), encoding="utf-8")
            await eventually(lambda: seen("refused"), lambda n: n == refused_before + 1)
            await pay()
            await eventually(lambda: points_so_far(db), lambda p: p == [10, 20, 20])
        finally:
            await db.close()
