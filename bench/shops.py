"""The benchmark's shops: made and given their earn programmes by the shops service's use cases,
announced on loyalty.shops before earn starts."""

from __future__ import annotations

import re
import time
from datetime import datetime

from bench.loadgen import shop_id, shop_rate
from services.earn.programme import EXAMPLE
from services.shops import handlers
from services.shops.commands import in_shops
from services.shops.handlers import Change
from services.shops.settings import ShopsSettings
from shared.clock import SystemClock
from shared.db import Connection

ACTOR = "bench"
TEMPLATE = "vn-fashion"  # a VND shop; its earn programme is replaced at once by the bench's


def earn_programme(index: int) -> str:
    """Earn's example programme (what the 1-shop run earns by) at shop `index`'s VND rate."""
    text = EXAMPLE.read_text(encoding="utf-8")
    rate = shop_rate(index)
    changed, found = re.subn(
        r"(\[currencies\.VND\]\nper_amount = )\d+",
        rf"\g<1>{rate.per_amount}",
        text,
        count=1,
    )
    if found != 1:
        raise ValueError(f"{EXAMPLE}: no [currencies.VND] per_amount to set")
    return changed


async def open_shops(
    kafka: str, database: str, shops: int, prefix: str = "bench-"
) -> tuple[float, datetime]:
    """Make `shops` shops (ids `prefix`0000, ...) in the benchmark's database and relay their
    events to loyalty.shops; returns the seconds it took, and when every shop's earn programme
    (its version 2, after the template's version 1) is in force: events timed from then on
    earn at each shop's rate."""
    settings = ShopsSettings(database_url=database, kafka_bootstrap_servers=kafka)
    started = time.perf_counter()

    async def work(conn: Connection, change: Change) -> datetime:
        for index in range(shops):
            await handlers.create_shop(
                conn, change, shop_id=shop_id(index, prefix), template=TEMPLATE
            )
        later = Change(actor=ACTOR, now=SystemClock().now(), lead=settings.effective_lead)
        versions = [
            await handlers.publish_version(
                conn,
                later,
                shop_id=shop_id(index, prefix),
                kind="earn",
                text=earn_programme(index),
                reason="benchmark rate",
            )
            for index in range(shops)
        ]
        return max(v.effective_from for v in versions)

    change = Change(actor=ACTOR, now=SystemClock().now(), lead=settings.effective_lead)
    in_force = await in_shops(settings, work, change, announces=True)
    return time.perf_counter() - started, in_force
