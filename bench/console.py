"""Benchmark of the console: how long each page takes over one shop's customers.

    .venv/bin/python -m bench.console [--customers 100000] [--partitions 4]
                                      [--warm-ups 5] [--requests 50] [--database loyalty_bench]

Runs against a broker and a database of its own (127.0.0.1:19092, database loyalty_bench):
one shop whose customers sign up (Vietnamese names) and order about three times each through
Kafka, every service as a process, drained; then an owner made by the console's use case reads
each page of PAGES (after warm-ups) and the widget's `me`. Prints the median and p95 of each
page, the upstream services' share from Server-Timing, and writes bench/results/latest.json
(`console`). A page answering 404 (not in this version of the console) is skipped with a note.
Target: p95 under 300 ms on every page.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from bench import console_stack, infra, report
from bench.console_stack import Shop
from shared.logs import configure_logging
from shared.topics import ALL_TOPICS, ensure_topics, topics_with_dlq

TARGET_P95_MS = 300


@dataclass(frozen=True)
class Page:
    name: str
    path: str  # {shop} and {customer} are filled in
    widget: bool = False  # the widget API: the customer's token, not the session


PAGES = (
    Page("home", "/shops/{shop}/"),
    Page("search", "/shops/{shop}/customers?q=nguyen%20thi"),
    Page("customer", "/shops/{shop}/customers/{customer}"),
    Page("programme", "/shops/{shop}/programme"),
    Page("versions", "/shops/{shop}/programme/earn"),
    Page("version", "/shops/{shop}/programme/earn/versions/2"),
    Page("messages", "/shops/{shop}/messages"),
    Page("operations", "/shops/{shop}/operations"),
    Page("staff", "/shops/{shop}/staff"),
    Page("widget_settings", "/shops/{shop}/widget"),
    Page("widget_me", "/widget/v1/shops/{shop}/me", widget=True),
)

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TIMING = re.compile(r"([\w.-]+);dur=([\d.]+)")


async def main(args: argparse.Namespace) -> dict[str, Any]:
    kafka = infra.fresh_broker()
    database = await infra.fresh_database(args.database)
    await ensure_topics(kafka, topics_with_dlq(ALL_TOPICS), partitions=args.partitions)
    figures: dict[str, Any] = {"customers": args.customers, "partitions": args.partitions}
    try:
        progress(f"shop {console_stack.SHOP} and a platform key")
        key = await console_stack.open_shop(kafka, database)
        group_prefix = f"bench-console-{time.time_ns()}"
        progress(f"sign-ups and orders of {args.customers} customers")
        customers, published_s = await console_stack.publish_load(kafka, args.customers)
        figures["orders"] = args.customers * console_stack.ORDERS_PER_CUSTOMER
        figures["publish_s"] = round(published_s, 2)
        with console_stack.services(kafka, database, group_prefix, key) as console:
            started = time.time()
            progress("services started; waiting until they drain the load")
            done = await console_stack.wait_drained(kafka, database, group_prefix, len(customers))
            figures["drain_s"] = round(done - started, 2)
            shop = await console_stack.reader(database, console, customers[0])
            async with httpx.AsyncClient(base_url=console, timeout=30) as client:
                figures["pages"], figures["skipped"] = await read_pages(
                    client, shop, warm_ups=args.warm_ups, requests=args.requests
                )
    finally:
        infra.stop_broker()
    figures["target_p95_ms"] = TARGET_P95_MS
    figures["over_target"] = [
        name for name, page in figures["pages"].items() if page["p95_ms"] >= TARGET_P95_MS
    ]
    return figures


def progress(line: str) -> None:
    print(f"[console bench] {line}", flush=True)


async def read_pages(
    client: httpx.AsyncClient, shop: Shop, *, warm_ups: int, requests: int
) -> tuple[dict[str, Any], list[str]]:
    """Each page of PAGES `requests` times after `warm_ups`, one request at a time; the
    figures by page, and the pages skipped (answering 404)."""
    pages: dict[str, Any] = {}
    skipped: list[str] = []
    cookie = await sign_in(client, shop)
    for page in PAGES:
        path = page.path.format(shop=shop.shop_id, customer=shop.customer)
        headers = (
            {"Authorization": f"Bearer {shop.widget_token}"} if page.widget else {"Cookie": cookie}
        )
        first = await client.get(path, headers=headers)
        if first.status_code == 404:
            progress(f"{page.name}: {path} answers 404 in this version, skipped")
            skipped.append(page.name)
            continue
        first.raise_for_status()
        progress(f"{page.name}: {path}")
        pages[page.name] = await measure(client, path, headers, warm_ups, requests)
    return pages, skipped


async def sign_in(client: httpx.AsyncClient, shop: Shop) -> str:
    """The session cookie, as a Cookie header. The console's cookies are Secure (`__Host-`):
    a client keeps them away from plain http, so they are carried by hand."""
    form = await client.get("/sign-in")
    form.raise_for_status()
    match = CSRF.search(form.text)
    if match is None:
        raise RuntimeError("the sign-in page has no csrf_token")
    answer = await client.post(
        "/sign-in",
        data={"email": shop.email, "password": shop.password, "csrf_token": match.group(1)},
        headers={"Cookie": cookie_header(form)},
    )
    if answer.status_code != 303:
        raise RuntimeError(f"sign-in answered {answer.status_code}")
    return cookie_header(answer)


def cookie_header(response: httpx.Response) -> str:
    """The cookies the response sets (not those it expires), as a Cookie header."""
    pairs = [line.split(";", 1)[0] for line in response.headers.get_list("set-cookie")]
    return "; ".join(pair for pair in pairs if not pair.endswith("="))


async def measure(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], warm_ups: int, requests: int
) -> dict[str, Any]:
    for _ in range(warm_ups):
        (await client.get(path, headers=headers)).raise_for_status()
    took: list[float] = []
    upstream: dict[str, list[float]] = {}
    for _ in range(requests):
        started = time.perf_counter()
        answer = await client.get(path, headers=headers)
        took.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
        for service, ms in upstream_ms(answer.headers.get("server-timing", "")).items():
            upstream.setdefault(service, []).append(ms)
    return {
        "median_ms": round(statistics.median(took), 1),
        "p95_ms": round(percentile_95(took), 1),
        # How long the page waited for each service, median over the requests.
        "upstream_median_ms": {s: round(statistics.median(v), 1) for s, v in upstream.items()},
    }


def upstream_ms(header: str) -> dict[str, float]:
    """Milliseconds per service of a Server-Timing header: the longest of a service's calls,
    since a page makes its calls at once (their sum would exceed the page's own time)."""
    found: dict[str, float] = {}
    for service, ms in TIMING.findall(header):
        found[service] = max(found.get(service, 0.0), float(ms))
    return found


def percentile_95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument(
        "--database",
        default=infra.DATABASE,
        help=f"the database made afresh for the run (default {infra.DATABASE})",
    )
    parser.add_argument("--warm-ups", type=int, default=5)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    configure_logging(level="warning")  # the relays of the shops' use cases log each record
    figures = asyncio.run(main(args))
    report.emit("console", figures)


if __name__ == "__main__":
    cli()
