"""Benchmark of notify: abandoned carts to emails accepted by a real SMTP server, and the limit.

    .venv/bin/python -m bench.notify [--carts 3000] [--customers 750] [--concurrency 4 8]
                                     [--smtp-latency-ms 20] [--worker-batch 50]
    .venv/bin/python -m bench.notify --quick

One SMTP server (aiosmtpd over TCP, in this process) waits `--smtp-latency-ms` before accepting
each message, as a provider does. Against it, for each `--concurrency`:

- end to end: the customers' sign-ups (email consent) are pre-loaded into the benchmark's broker
  (127.0.0.1:19092) and consumed by a notify process of their own until every welcome is
  accepted; then the `--carts` cart.abandoned events, pre-loaded too, are drained by a fresh
  notify process (SMTP connections = the concurrency, worker slots twice that, as notify's
  defaults have it), timed from its
  first batch until the server has accepted every reminder. Checked: one message per cart, to
  that cart's customer, no Message-ID twice, nothing missing; the process's peak RSS.
- the limit: a bare aiosmtplib sender in a process of its own, with as many connections, builds
  (with notify's own message builder) and sends as many messages of notify's headers and mean
  size to the same server.

notify runs on its defaults except: one reminder step, one minute after the cart was left (the
least the setting takes; the carts were left two minutes before the run, so each reminder is
due when its event arrives), no quiet hours, a frequency cap above the carts per customer, and
an idle pause of 0.2 s (with the default 5 s a worker that found nothing due at start-up sleeps
through the first seconds). Database `loyalty_bench_notify`; prints a table, with how busy the
machine's cores were just before and after, and writes the "notify" section of
bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import re
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import aiosmtplib
import asyncpg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench import infra, loadgen, report
from bench.service import bench_service, service_env
from services.notify.adapters import channel
from services.notify.adapters.email import OutgoingEmail, build_email
from services.notify.rendering import Rendered
from services.processes import ServiceProcess
from shared.clock import SystemClock
from shared.events import encode_event, make_event
from shared.events.catalog import TOPICS
from shared.runtime import consumer_group
from shared.settings import CommonSettings
from shared.topics import ALL_TOPICS, ensure_topics, start_group_at_end, topics_with_dlq

DATABASE = "loyalty_bench_notify"
MAIL_DOMAIN = "shop.example"
NOTIFY_ID = re.compile(r"<notify-([0-9a-f-]{36})@")
CART_LINES = [  # total 1,412,567 VND
    {
        "sku": sku,
        "name": name,
        "quantity": quantity,
        "unit_price": price,
        "image_url": f"https://shop.example/img/{sku.lower()}.jpg",
        "product_url": f"https://shop.example/p/{sku.lower()}",
    }
    for sku, name, quantity, price in (
        ("TEA-01", "Bộ ấm trà Bát Tràng", 1, "1234567"),
        ("CUP-02", "Chén sứ men lam", 2, "89000"),
    )
]


# --- the SMTP server ------------------------------------------------------------------------


class Accepted(NamedTuple):
    message_id: str
    rcpt_tos: tuple[str, ...]
    size: int
    at: float  # time.time() of the acceptance


class SmtpSink:
    """aiosmtpd on a free port in a thread: real SMTP over TCP; keeps what each message was."""

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s
        self.accepted: list[Accepted] = []
        self._lock = threading.Lock()
        with socket.socket() as probe:  # aiosmtpd's controller needs a concrete port
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpSink:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        await asyncio.sleep(self.latency_s)
        content = envelope.content or b""
        assert isinstance(content, bytes)
        message_id = ""
        for line in content.splitlines():
            if line[:11].lower() == b"message-id:":
                message_id = line.split(b":", 1)[1].strip().decode()
                break
        accepted = Accepted(message_id, tuple(envelope.rcpt_tos), len(content), time.time())
        with self._lock:
            self.accepted.append(accepted)
        return "250 OK"

    def take(self) -> list[Accepted]:
        """What was accepted since the last take."""
        with self._lock:
            taken, self.accepted = self.accepted, []
        return taken

    def count(self) -> int:
        with self._lock:
            return len(self.accepted)


# --- the load -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    signups: list[tuple[bytes, bytes]]
    carts: list[tuple[bytes, bytes]]
    recipient: dict[str, str]  # cart id: its customer's address


def email_of(customer: str) -> str:
    return f"{customer}@bench.example"


def generate(carts: int, customers: int) -> Load:
    """Customers signed up with email consent ten minutes ago, then `carts` carts left two
    minutes ago, spread over them in turn."""
    now = datetime.now(UTC)
    signed_up, left = now - timedelta(minutes=10), now - timedelta(minutes=2)
    ids = [f"nb{c:06d}" for c in range(customers)]
    signups = [
        _record(
            "shop.customers",
            "customer.signed_up",
            customer,
            {
                "customer_id": customer,
                "email": email_of(customer),
                "name": "Nguyễn Văn An",
                "locale": "vi-VN",
                "time_zone": "Asia/Ho_Chi_Minh",
                "consent": {"email": True, "push": False},
            },
            signed_up,
        )
        for customer in ids
    ]
    records, recipient = [], {}
    for n in range(carts):
        customer, cart = ids[n % customers], f"cart{n:07d}"
        data = {
            "cart_id": cart,
            "customer_id": customer,
            "currency": "VND",
            "items": CART_LINES,
            "total": {"amount": "1412567", "currency": "VND"},
            "cart_url": f"https://shop.example/cart/{cart}",
        }
        records.append(_record("shop.carts", "cart.abandoned", customer, data, left))
        recipient[cart] = email_of(customer)
    return Load(signups, records, recipient)


def _record(
    topic: str, type_: str, customer: str, data: dict[str, Any], at: datetime
) -> tuple[bytes, bytes]:
    model = TOPICS[topic][type_].model_validate(data)
    event = make_event(type_, source="bench/shop", subject=customer, data=model, time=at)
    return customer.encode(), encode_event(event)


# --- notify end to end ----------------------------------------------------------------------


def notify_env(
    kafka: str, database: str, group: str, *, port: int, concurrency: int, args: argparse.Namespace
) -> dict[str, str]:
    return {
        **service_env(kafka, database, group, args.batch),
        "LOYALTY_SMTP_PORT": str(port),
        "LOYALTY_SMTP_POOL_SIZE": str(concurrency),
        # as notify's defaults have it: twice as many messages in flight as SMTP connections
        "LOYALTY_WORKER_CONCURRENCY": str(2 * concurrency),
        "LOYALTY_WORKER_BATCH": str(args.worker_batch),
        "LOYALTY_WORKER_IDLE_S": "0.2",
        "LOYALTY_MAIL_FROM": f"Loyalty <loyalty@{MAIL_DOMAIN}>",
        "LOYALTY_UNSUBSCRIBE_SECRET": "b" * 40,
        "LOYALTY_CART_REMINDER_STEPS": json.dumps([{"after_minutes": 1}]),
        "LOYALTY_QUIET_HOURS_START": "00:00",  # equal ends: no quiet hours
        "LOYALTY_QUIET_HOURS_END": "00:00",
        "LOYALTY_FREQUENCY_CAP": str(-(-args.carts // args.customers) + 1),
    }


async def end_to_end(
    kafka: str, sink: SmtpSink, load: Load, concurrency: int, args: argparse.Namespace
) -> dict[str, Any]:
    database = await infra.fresh_database(DATABASE)
    prefix = f"bench-notify{concurrency}-{time.time_ns()}"
    # The sign-ups first, in a process of their own that leaves the carts where they are.
    await start_group_at_end(kafka, _group(f"{prefix}-signups", "shop.carts"), ["shop.carts"])
    env = notify_env(
        kafka, database, f"{prefix}-signups", port=sink.port, concurrency=concurrency, args=args
    )
    welcomes = await _drain(env, database, sink, "customer.signed_up", len(load.signups))
    # Then the carts, by a fresh process that starts after the sign-ups.
    await start_group_at_end(kafka, _group(f"{prefix}-carts", "shop.customers"), ["shop.customers"])
    env = notify_env(
        kafka, database, f"{prefix}-carts", port=sink.port, concurrency=concurrency, args=args
    )
    reminders = await _drain(env, database, sink, "cart.abandoned", len(load.carts))
    conn = await asyncpg.connect(database)
    try:
        checked = await _verify(conn, reminders.accepted, load)
    finally:
        await conn.close()
    return {
        "welcomes_per_s": welcomes.rate(len(load.signups)),
        "carts_per_s": reminders.rate(len(load.carts)),
        "seconds": round(reminders.last_accepted - reminders.first_batch, 2),
        "sending_per_s": round(
            len(load.carts) / (reminders.last_accepted - reminders.first_accepted), 1
        ),
        "message_bytes": round(sum(a.size for a in reminders.accepted) / len(reminders.accepted)),
        "peak_rss_mb": reminders.peak_rss_mb,
        **checked,
    }


def _group(prefix: str, topic: str) -> str:
    return consumer_group(CommonSettings(consumer_group_prefix=prefix), "notify", topic)


@dataclass(frozen=True)
class Drained:
    accepted: list[Accepted]
    first_batch: float  # when notify's first batch of the trigger's topic began
    first_accepted: float
    last_accepted: float
    peak_rss_mb: float

    def rate(self, messages: int) -> float:
        return round(messages / (self.last_accepted - self.first_batch), 1)


async def _drain(
    env: dict[str, str], database: str, sink: SmtpSink, trigger: str, expected: int
) -> Drained:
    """Run notify until every message of `trigger` is planned, settled and accepted."""
    sink.take()
    service = await asyncio.to_thread(bench_service("notify", env).start)
    try:
        conn = await asyncpg.connect(database)
        try:
            await _wait_settled(conn, service, sink, trigger=trigger, expected=expected)
            first = await conn.fetchval(
                "SELECT extract(epoch FROM min(received_at)) FROM notify.inbox WHERE topic = $1",
                "shop.carts" if trigger == "cart.abandoned" else "shop.customers",
            )
        finally:
            await conn.close()
        rss = round(service.peak_rss_mb(), 1)
    finally:
        service.stop()
    accepted = sink.take()
    return Drained(
        accepted,
        float(first),
        min(a.at for a in accepted),
        max(a.at for a in accepted),
        rss,
    )


async def _wait_settled(
    conn: asyncpg.Connection,
    service: ServiceProcess,
    sink: SmtpSink,
    *,
    trigger: str,
    expected: int,
    timeout: float = 900,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not service.running():
            raise RuntimeError(f"notify exited; see {service.log_path}")
        planned, open_, sent = await conn.fetchrow(
            """SELECT count(*),
                      count(*) FILTER (WHERE status IN ('pending', 'sending')),
                      count(*) FILTER (WHERE status = 'sent')
               FROM notify.scheduled WHERE trigger = $1""",
            trigger,
        ) or (0, 0, 0)
        if planned >= expected and not open_ and sink.count() >= sent:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"notify did not settle {expected} {trigger} messages in {timeout}s")


async def _verify(conn: asyncpg.Connection, accepted: list[Accepted], load: Load) -> dict[str, Any]:
    """One accepted message per cart, to the cart's customer; no Message-ID twice."""
    carts = {
        r["message_id"]: r["cart_id"]
        for r in await conn.fetch(
            """SELECT message_id::text, payload->>'cart_id' AS cart_id FROM notify.scheduled
               WHERE trigger = 'cart.abandoned'"""
        )
    }
    statuses = {
        r["status"]: r["n"]
        for r in await conn.fetch(
            """SELECT status, count(*) AS n FROM notify.scheduled
               WHERE trigger = 'cart.abandoned' GROUP BY status"""
        )
    }
    by_id = Counter(a.message_id for a in accepted)
    per_cart: Counter[str] = Counter()
    wrong_recipient = unexpected = 0
    for message_id, rcpt_tos in {a.message_id: a.rcpt_tos for a in accepted}.items():
        match = NOTIFY_ID.match(message_id)
        cart = carts.get(match.group(1)) if match else None
        if cart not in load.recipient:
            unexpected += 1
            continue
        per_cart[cart] += 1
        wrong_recipient += rcpt_tos != (load.recipient[cart],)
    out = {
        "accepted": len(accepted),
        "duplicate_message_ids": sum(n - 1 for n in by_id.values()),
        "carts_missing": sum(1 for c in load.recipient if not per_cart[c]),
        "carts_more_than_once": sum(1 for n in per_cart.values() if n > 1),
        "wrong_recipient": wrong_recipient,
        "unexpected_messages": unexpected,
        "scheduled_by_status": statuses,
    }
    counts = [v for k, v in out.items() if k not in ("accepted", "scheduled_by_status")]
    exact = len(accepted) == len(load.recipient) and statuses == {"sent": len(load.recipient)}
    return {"correct": exact and not any(counts), **out}


# --- the limit: a bare aiosmtplib sender ----------------------------------------------------


def bare_message(n: int, text: str) -> OutgoingEmail:
    """A message shaped like notify's, built by notify's own builder: the same headers, `text`
    as the text and the HTML part. The bare sender pays what notify pays to build a message."""
    rendered = Rendered(
        "vi",
        "Giỏ hàng của bạn vẫn đang chờ",
        text,
        f"<html><body><p>{text}</p></body></html>",
        "",
        "",
    )
    envelope = channel.Envelope(
        message_id=f"<bare-{n}@{MAIL_DOMAIN}>",
        shop_id="default",
        customer_id=f"c{n}",
        trigger="cart.abandoned",
        category="marketing",
        rendered=rendered,
        email=f"c{n}@bench.example",
        name="Nguyễn Văn An",
        push_subscription=None,
        unsubscribe_url=f"https://{MAIL_DOMAIN}/unsubscribe?token=bare-{n}",
        link=f"https://{MAIL_DOMAIN}/cart",
        mail_from=f"Loyalty <loyalty@{MAIL_DOMAIN}>",
    )
    return build_email(envelope, mail_from=envelope.mail_from, clock=SystemClock(), mailto=None)


def filler(size: int) -> str:
    """The text that makes bare messages about `size` bytes long on the wire."""
    line = "Bộ ấm trà Bát Tràng, chén sứ men lam: giỏ hàng của bạn vẫn đang chờ.\n"

    def text(chars: int) -> str:
        return (line * (chars // len(line) + 1))[: max(chars, 0)]

    def wire(chars: int) -> int:
        return len(bare_message(0, text(chars)).content.replace(b"\n", b"\r\n"))

    base, probe = wire(0), 1000
    return text(round((size - base) * probe / (wire(probe) - base)))


def bare_sender(port: int, messages: int, concurrency: int, size: int) -> float:
    """Messages per second over `concurrency` connections (run in a process of its own)."""
    return asyncio.run(_bare(port, messages, concurrency, size))


async def _bare(port: int, messages: int, concurrency: int, size: int) -> float:
    """Each connection builds and sends the next message until all are sent."""
    text = filler(size)
    numbers = iter(range(messages))

    async def connection() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        for n in numbers:
            message = bare_message(n, text)
            await client.sendmail(message.sender, [message.recipient], message.content)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return messages / (time.perf_counter() - started)


async def bare_limit(sink: SmtpSink, messages: int, concurrency: int, size: int) -> dict[str, Any]:
    sink.take()
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=spawn) as child:
        rate = await asyncio.get_running_loop().run_in_executor(
            child, bare_sender, sink.port, messages, concurrency, size
        )
    accepted = sink.take()
    ids = Counter(a.message_id for a in accepted)
    return {
        "messages_per_s": round(rate, 1),
        "message_bytes": round(sum(a.size for a in accepted) / len(accepted)),
        "correct": len(accepted) == messages and len(ids) == messages,
    }


# --- the run --------------------------------------------------------------------------------


def cpu_busy(seconds: float = 2.0) -> float:
    """The share of the machine's CPU time in use over `seconds`: sampled while this benchmark
    does nothing, it tells how busy other work keeps the cores."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait

    total, idle = sample()
    time.sleep(seconds)
    total2, idle2 = sample()
    return round(1 - (idle2 - idle) / max(total2 - total, 1), 2)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    busy_before = cpu_busy()
    kafka = infra.fresh_broker()
    try:
        await ensure_topics(kafka, topics_with_dlq(ALL_TOPICS), partitions=args.partitions)
        load = generate(args.carts, args.customers)
        preload = await loadgen.preload(kafka, "shop.customers", load.signups)
        preload += await loadgen.preload(kafka, "shop.carts", load.carts)
        figures: dict[str, Any] = {
            "carts": args.carts,
            "customers": args.customers,
            "partitions": args.partitions,
            "worker_batch": args.worker_batch,
            "smtp_latency_ms": args.smtp_latency_ms,
            "preload_s": round(preload, 2),
            "machine_busy_before": busy_before,
        }
        with SmtpSink(args.smtp_latency_ms / 1000) as sink:
            for c in args.concurrency:
                notify = await end_to_end(kafka, sink, load, c, args)
                bare = await bare_limit(sink, args.carts, c, notify["message_bytes"])
                share = round(notify["carts_per_s"] / bare["messages_per_s"], 3)
                figures[f"concurrency_{c}"] = {
                    "notify": notify,
                    "bare_aiosmtplib": bare,
                    "notify_share_of_bare": share,
                }
    finally:
        infra.stop_broker()
    figures["machine_busy_after"] = cpu_busy()
    return figures


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--carts", type=int, help="cart.abandoned events (default 3000)")
    parser.add_argument("--customers", type=int, help="customers signed up (default 750)")
    parser.add_argument("--concurrency", type=int, nargs="+", help="default: 4 8")
    parser.add_argument("--quick", action="store_true", help="600 carts of 150, concurrency 8")
    parser.add_argument("--smtp-latency-ms", type=float, default=20.0)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--batch", type=int, default=CommonSettings().batch_max_records, help="records per batch"
    )
    parser.add_argument("--worker-batch", type=int, default=50, help="rows per worker claim")
    args = parser.parse_args()
    carts, customers, concurrency = (600, 150, [8]) if args.quick else (3000, 750, [4, 8])
    args.carts = args.carts or carts
    args.customers = args.customers or customers
    args.concurrency = args.concurrency or concurrency
    report.emit("notify", asyncio.run(main(args)))


if __name__ == "__main__":
    cli()
