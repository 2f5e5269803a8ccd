"""Prometheus metrics shared by the services; labels stay bounded (never a customer id)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_CONSUMED = Counter(
    "loyalty_messages_consumed",
    "Messages consumed, by outcome: processed, duplicate or dead_lettered.",
    ["service", "topic", "outcome"],
)
BATCH_DURATION = Histogram(
    "loyalty_batch_duration_seconds",
    "Time to process one consumed batch, from parse to commit.",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "loyalty_batch_size",
    "Messages per consumed batch.",
    ["service", "topic"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000),
)
TRANSIENT_FAILURES = Counter(
    "loyalty_transient_failures",
    "Transient failures met while processing a batch; the batch is retried.",
    ["service", "topic"],
)
OUTBOX_PUBLISHED = Counter(
    "loyalty_outbox_published",
    "Events relayed from the outbox to Kafka.",
    ["service", "topic"],
)
OUTBOX_BACKLOG = Gauge(
    "loyalty_outbox_backlog",
    "Events waiting in the outbox at the last relay pass.",
    ["service"],
)
POINTS_ISSUED = Counter(
    "loyalty_points_issued",
    "Points credited to customers by earning entries.",
    ["service", "currency"],
)
