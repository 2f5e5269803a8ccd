"""Benchmark notify's delivery: due emails sent per second over real SMTP, by concurrency.

    .venv/bin/python -m bench.notify --messages 2000 --concurrency 1 4 8 --smtp-latency-ms 20

Runs against a database of its own (`loyalty_bench_notify`) and an SMTP server in the process
(aiosmtpd) that waits `--smtp-latency-ms` before accepting each message, as a provider does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import SecretStr

from bench import report
from services.notify.adapters import projections, schedule
from services.notify.adapters.projections import CustomerPatch
from services.notify.bootstrap import definition, make_worker
from services.notify.domain.messages import plan_for_channels
from services.notify.settings import NotifySettings
from shared.clock import FixedClock
from shared.infrastructure import local_database_url
from shared.logs import configure_logging
from shared.runtime import prepare_database

DATABASE = "loyalty_bench_notify"
AT = datetime(2030, 1, 7, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City


class _Accepting:
    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.message_ids: Counter[str] = Counter()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        await asyncio.sleep(self.latency_s)
        for line in (envelope.content or b"").splitlines():
            if isinstance(line, bytes) and line.lower().startswith(b"message-id:"):
                self.message_ids[line.split(b":", 1)[1].strip().decode()] += 1
                break
        return "250 OK"


async def fresh_database() -> str:
    admin_url = os.environ.get("LOYALTY_DATABASE_URL") or local_database_url(os.environ)
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await conn.close()
    return f"{admin_url.rpartition('/')[0]}/{DATABASE}"


async def one_run(
    url: str, port: int, handler: _Accepting, messages: int, concurrency: int
) -> dict[str, Any]:
    settings = NotifySettings(
        database_url=SecretStr(url),
        smtp_port=port,
        smtp_pool_size=concurrency,
        worker_concurrency=concurrency,
        worker_batch=200,
        db_pool_max=concurrency + 2,
        unsubscribe_secret=SecretStr("b" * 40),
        worker_scope=f"bench{concurrency}-",
    )
    pool = await asyncpg.create_pool(url, min_size=1, max_size=concurrency + 2)
    try:
        await prepare_database(pool, definition(settings))
        ids = [f"bench{concurrency}-{n:06d}" for n in range(messages)]
        fields = {
            "email": "member@bench.example",
            "name": "Nguyễn Văn An",
            "locale": "vi-VN",
            "time_zone": "Asia/Ho_Chi_Minh",
            "consent_email": True,
        }
        plans = [
            plan
            for c in ids
            for plan in plan_for_channels(
                key=f"welcome:{c}",
                customer_id=c,
                trigger="customer.signed_up",
                due_at=AT,
                payload={},
                has_push=False,
            )
        ]
        async with pool.acquire() as conn:
            await projections.patch_customers(conn, [CustomerPatch(c, fields, AT) for c in ids])
            await schedule.schedule(conn, plans, AT)
        handler.message_ids.clear()
        worker = make_worker(pool, settings, FixedClock(AT + timedelta(minutes=1)))
        started = time.perf_counter()
        outcomes = await worker.run_due(AT + timedelta(minutes=1))
        elapsed = time.perf_counter() - started
        for channel in worker.deliverer.channels.values():
            await channel.close()
    finally:
        await pool.close()
    return {
        "sent": outcomes["sent"],
        "seconds": round(elapsed, 2),
        "messages_per_s": round(outcomes["sent"] / elapsed, 1),
        "duplicates": sum(n - 1 for n in handler.message_ids.values()),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    url = await fresh_database()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    handler = _Accepting(args.smtp_latency_ms / 1000)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        runs = {
            f"concurrency_{c}": await one_run(url, port, handler, args.messages, c)
            for c in args.concurrency
        }
    finally:
        controller.stop()
    return {"messages": args.messages, "smtp_latency_ms": args.smtp_latency_ms, **runs}


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 4, 8])
    parser.add_argument("--smtp-latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    configure_logging(fmt="console", level="warning", service="bench")  # not a line per message
    report.emit("notify", asyncio.run(main(args)))


if __name__ == "__main__":
    cli()
