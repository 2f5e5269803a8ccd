"""The console benchmark's shop: its customers' sign-ups and orders drained by every service
running as processes, a console account and a widget secret to read the pages with."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from bench import loadgen, shops, signups
from bench.service import bench_service, wait_ready
from services.console import widget
from services.console.commands import create_account, new_password
from services.console.domain.roles import Role
from services.console.settings import ConsoleSettings
from services.demo_storefront import StorefrontShop, token_for
from services.lag import positions
from services.processes import ServiceProcess
from services.registry import SERVICES
from services.shops import handlers
from services.shops.commands import in_shops
from services.shops.handlers import Change
from services.shops.settings import ShopsSettings
from shared.clock import SystemClock
from shared.db import Connection, create_pool
from shared.runtime import consumer_group
from shared.settings import CommonSettings

SHOP = loadgen.shop_id(0)
ACCOUNT = "bench@loyalty.example"
# Nobody is messaged: notify's worker sends only to customers whose id starts so.
NOBODY = "no-one-"
ORDERS_PER_CUSTOMER = 3


@dataclass(frozen=True)
class Shop:
    """What the pages are read with."""

    console: str  # the console's URL
    shop_id: str
    customer: str  # a customer with a name, orders and points
    email: str
    password: str
    widget_token: str


async def open_shop(kafka: str, database: str) -> str:
    """The shop (the earn benchmark's first, made by the shops use cases) and a platform key
    for the console; waits until its programme is in force. The key's secret."""
    _, in_force = await shops.open_shops(kafka, database, 1)

    async def platform_key(conn: Connection, change: Change) -> str:
        made = await handlers.create_key(conn, change, shop_id=None, scopes=["platform"])
        return made.secret

    settings = ShopsSettings(database_url=database, kafka_bootstrap_servers=kafka)
    change = Change(actor=shops.ACTOR, now=SystemClock().now(), lead=settings.effective_lead)
    key = await in_shops(settings, platform_key, change, announces=True)
    # Orders timed from then on earn at the shop's rate.
    await asyncio.sleep(max(0.0, (in_force - datetime.now(UTC)).total_seconds()) + 0.01)
    return key


async def publish_load(kafka: str, customers: int) -> tuple[list[str], float]:
    """Every customer's sign-up, then their orders; the customers and the seconds it took."""
    orders = loadgen.generate_at_shops(customers * ORDERS_PER_CUSTOMER, customers, 1, prefix="c")
    ids = sorted({customer for _, customer in orders.expected_at_shops})
    seconds = await loadgen.preload(kafka, "shop.customers", signups.generate(ids, SHOP))
    seconds += await loadgen.preload(kafka, "shop.orders", orders.records)
    return ids, seconds


@contextmanager
def services(kafka: str, database: str, group_prefix: str, key: str) -> Iterator[str]:
    """Every service as a process, until the block ends; the console's URL."""
    env = {
        "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": kafka,
        "LOYALTY_DATABASE_URL": database,
        "LOYALTY_CONSUMER_GROUP_PREFIX": group_prefix,
        "LOYALTY_WORKER_SCOPE": NOBODY,
        # notify refuses to start without it; nothing it signs leaves the run.
        "LOYALTY_UNSUBSCRIBE_SECRET": secrets.token_urlsafe(32),
    }
    others = {name: bench_service(name, env) for name in SERVICES if name != "console"}
    urls = {f"LOYALTY_CONSOLE_{name.upper()}_URL": p.url for name, p in others.items()}
    console = bench_service("console", {**env, **urls, "LOYALTY_CONSOLE_API_KEY": key})
    started: list[ServiceProcess] = []
    try:
        for process in (*others.values(), console):
            started.append(process.launch())
        for process in started:
            wait_ready(process)
        yield console.url
    finally:
        for process in started:
            process.stop()


async def wait_drained(
    kafka: str, database: str, group_prefix: str, customers: int, timeout: float = 1800
) -> float:
    """Until every service's groups have applied every record (twice in a row a second
    apart: what one applies another consumes), every customer is known to notify and every
    order is in earn's ledger. The time it was so."""
    settings = CommonSettings(consumer_group_prefix=group_prefix)
    groups = {
        (name, topic): consumer_group(settings, name, topic)
        for name, entry in SERVICES.items()
        for topic in entry.definition(entry.settings()).handlers
    }
    conn = await asyncpg.connect(database)
    try:
        deadline, settled = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            behind = sum(p.lag for p in await positions(kafka, groups))
            known = await conn.fetchval("SELECT count(*) FROM notify.customers")
            entries = await conn.fetchval("SELECT count(*) FROM earn.ledger")
            done = behind == 0 and known >= customers
            settled = settled + 1 if done and entries >= customers * ORDERS_PER_CUSTOMER else 0
            if settled >= 2:
                return time.time()
            await asyncio.sleep(1)
    finally:
        await conn.close()
    raise TimeoutError(f"the services did not drain the load in {timeout}s")


async def reader(database: str, console: str, customer: str) -> Shop:
    """An owner of the shop made by the console's own use case, and a widget token of
    `customer` signed with a secret the console made."""
    settings = ConsoleSettings(database_url=database)
    password = new_password()
    await create_account(
        settings,
        email=ACCOUNT,
        name="Bench",
        password=password,
        operator=False,
        shops={SHOP: Role.OWNER},
        reset=False,
    )
    pool = await create_pool(database, min_size=1, max_size=1)
    try:
        secret = await widget.make_widget_secret(
            pool, shop_id=SHOP, by=shops.ACTOR, now=SystemClock().now()
        )
    finally:
        await pool.close()
    storefront = StorefrontShop(SHOP, SHOP, "vi", secret)
    token = token_for(storefront, customer, int(time.time()))
    return Shop(console, SHOP, customer, ACCOUNT, password, token)
