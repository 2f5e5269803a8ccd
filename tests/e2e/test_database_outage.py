"""The database stops for 30 seconds under a stream: readiness drops and returns, liveness holds,
the alert rules see it in the recorded metrics, and every event lands in the ledger once."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import yaml
from aiokafka import AIOKafkaProducer
from infrastructure import Endpoints
from ops import PROMETHEUS, promtool, run
from private_postgres import PrivatePostgres
from prometheus_client.parser import text_string_to_metric_families
from support import encoded, eventually, order_paid, unique

OUTAGE_S = 30
RECORDED = {
    "loyalty_ready",
    "loyalty_readiness_check",
    "loyalty_transient_failures_total",
    "loyalty_messages_consumed_total",
}


@dataclass
class Recording:
    """One scrape per second of /metrics, /readyz and /healthz, as Prometheus would take them."""

    started: float = field(default_factory=time.monotonic)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    ready: list[int] = field(default_factory=list)
    live: list[int] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)

    def add(self, metrics: str, ready: httpx.Response, live: int) -> None:
        step = len(self.ready)
        for family in text_string_to_metric_families(metrics):
            for sample in family.samples:
                if sample.name in RECORDED:
                    labels = {"job": "loyalty", "instance": "earn", **sample.labels}
                    name = (
                        sample.name
                        + "{"
                        + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                        + "}"
                    )
                    values = self.series.setdefault(name, [None] * step)
                    values.append(sample.value)
        for values in self.series.values():
            values.extend([None] * (step + 1 - len(values)))
        self.ready.append(ready.status_code)
        self.bodies.append(ready.text)
        self.live.append(live)

    def first_failure(self, topic: str = "shop.orders") -> int:
        """The scrape at which the topic's transient-failure counter first appeared."""
        for name, values in self.series.items():
            if name.startswith("loyalty_transient_failures_total") and f'topic="{topic}"' in name:
                return next(i for i, v in enumerate(values) if v is not None)
        raise AssertionError(f"no transient failure was recorded for {topic}")

    def input_series(self) -> list[dict[str, str]]:
        return [
            {"series": name, "values": " ".join("_" if v is None else repr(v) for v in values)}
            for name, values in self.series.items()
        ]


async def record(url: str, recording: Recording, stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=3) as client:
        tick = time.monotonic()
        while not stop.is_set():
            metrics = await client.get("/metrics")
            ready = await client.get("/readyz")
            live = (await client.get("/healthz")).status_code
            recording.add(metrics.text, ready, live)
            tick += 1.0
            await asyncio.sleep(max(0.0, tick - time.monotonic()))


def rules_without_annotations(path: Path) -> None:
    # Annotations render sample values, which a recording cannot know in advance; the
    # expressions, durations and labels are those of deploy/prometheus/alerts.yml.
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    path.write_text(yaml.safe_dump(rules))


async def test_database_down_30s_drops_readiness_fires_alerts_and_loses_no_event(
    infrastructure: Endpoints, spawn: type, tmp_path: Path
) -> None:
    customers = [unique("db") for _ in range(10)]
    events = [order_paid(customers[i % 10], total="7", currency="USD") for i in range(400)]
    database = PrivatePostgres().start()
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka_bootstrap, acks="all")
    recording = Recording()
    stop_recording = asyncio.Event()
    try:
        earn = spawn(
            "earn",
            None,
            ("LOYALTY_DATABASE_URL", database.url),
            ("LOYALTY_MONITOR_INTERVAL_S", "1"),
        ).start()
        await producer.start()
        recorder = asyncio.create_task(record(earn.url, recording, stop_recording))

        async def stream() -> None:
            # About 40 seconds of traffic: before, during and after the outage.
            for event in events:
                await producer.send("shop.orders", encoded(event), key=event.subject.encode())
                # 10 events a second whatever the machine's speed, so that traffic really
                # spans the outage (a fast machine once sent all of it before the stop).
                await asyncio.sleep(0.1)
            await producer.flush()

        sending = asyncio.create_task(stream())
        await asyncio.sleep(5)
        down_at = len(recording.ready)
        await asyncio.to_thread(database.stop)
        await asyncio.sleep(OUTAGE_S)
        await asyncio.to_thread(database.start)
        up_at = len(recording.ready)
        await sending
        db = await asyncpg.connect(database.url)
        try:

            async def entries() -> int:
                return int(
                    await db.fetchval(
                        "SELECT count(*) FROM earn.ledger WHERE customer_id = ANY($1::text[])",
                        customers,
                    )
                )

            await eventually(entries, lambda n: n >= len(events), timeout=60)
            await asyncio.sleep(2)  # a duplicate, if any got through, would land now
            rows = await db.fetch(
                """SELECT customer_id, count(*) AS n, count(DISTINCT entry_id) AS ids,
                          sum(delta) AS points FROM earn.ledger
                   WHERE customer_id = ANY($1::text[]) GROUP BY customer_id""",
                customers,
            )
        finally:
            await db.close()
        # Keep scraping until the transient-failure alert has had its minute (and a margin).
        await asyncio.sleep(max(0, recording.first_failure() + 64 - len(recording.ready)))
        stop_recording.set()
        await recorder
        assert earn.stop() == 0
    finally:
        stop_recording.set()
        await producer.stop()
        database.remove()

    expected = Counter(e.subject for e in events)
    assert {r["customer_id"]: (r["n"], r["ids"], r["points"]) for r in rows} == {
        c: (n, n, 7 * n) for c, n in expected.items()
    }
    assert set(recording.live) == {200}, "liveness must hold while the database is down"
    assert recording.ready[:down_at] == [200] * down_at
    outage = recording.ready[down_at:up_at]
    assert outage.count(503) >= OUTAGE_S - 5, outage
    assert any('"database": false' in b for b in recording.bodies[down_at:up_at])
    assert recording.ready[-1] == 200
    assert_alert_rules_see_the_outage(recording, down_at, tmp_path)


def assert_alert_rules_see_the_outage(recording: Recording, down_at: int, tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yml"
    rules_without_annotations(rules)
    alerts = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    expr = {r["alert"]: r["expr"] for g in alerts["groups"] for r in g["rules"]}
    mid = down_at + OUTAGE_S // 2
    last = len(recording.ready) - 1
    # Every topic whose failures the rule has seen for its full minute by the end: a counter
    # shows an increase from its second sample on.
    failing = {
        name.split('topic="')[1].split('"')[0]
        for name, values in recording.series.items()
        if name.startswith("loyalty_transient_failures_total")
        and any(v is not None for v in values[: last - 62])
    }
    labels = 'instance="earn", job="loyalty", service="earn"'
    test = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1s",
        "tests": [
            {
                "interval": "1s",
                "input_series": recording.input_series(),
                "promql_expr_test": [
                    # Mid-outage the readiness alert's expression holds...
                    {
                        "expr": expr["LoyaltyNotReady"],
                        "eval_time": f"{mid}s",
                        "exp_samples": [{"labels": f"loyalty_ready{{{labels}}}", "value": 0}],
                    },
                    # ...and the database is the check that fails.
                    {
                        "expr": 'loyalty_readiness_check{check="database"} == 0',
                        "eval_time": f"{mid}s",
                        "exp_samples": [
                            {
                                "labels": 'loyalty_readiness_check{check="database", '
                                + labels
                                + "}",
                                "value": 0,
                            }
                        ],
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": f"{down_at - 1}s", "alertname": "LoyaltyTransientFailures"},
                    # Thirty seconds is shorter than the readiness alert's two minutes: no page.
                    {"eval_time": f"{last}s", "alertname": "LoyaltyNotReady"},
                    {
                        "eval_time": f"{last}s",
                        "alertname": "LoyaltyTransientFailures",
                        "exp_alerts": [
                            {"exp_labels": {"severity": "warning", "service": "earn", "topic": t}}
                            for t in sorted(failing)
                        ],
                    },
                ],
            }
        ],
    }
    test_file = tmp_path / "outage.test.yml"
    test_file.write_text(json.dumps(test))

    tested = run(promtool(), "test", "rules", str(test_file))

    assert "shop.orders" in failing
    assert tested.returncode == 0, tested.stdout + tested.stderr
