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
OUTBOX_PARKED = Counter(
    "loyalty_outbox_parked",
    "Outbox rows set aside in <schema>.outbox_parked: the broker refuses a record of theirs as "
    "too large for its topic.",
    ["service", "topic"],
)
OUTBOX_BACKLOG = Gauge(
    "loyalty_outbox_backlog",
    "Events waiting in the outbox (counted every monitoring interval).",
    ["service"],
)
POINTS_ISSUED = Counter(
    "loyalty_points_issued",
    "Points credited to customers by earning entries, by what earned them.",
    ["service", "reason"],
)
BATCHES_FAILED = Counter(
    "loyalty_batches_failed",
    "Batches handed back uncommitted (redelivered later): reason transient_exhausted or bug.",
    ["service", "topic", "reason"],
)
CONSUMER_LAG = Gauge(
    "loyalty_consumer_lag",
    "Records of an assigned partition not yet committed by the group (end offset - committed).",
    ["service", "topic", "partition"],
)
CONSUMER_LAST_COMMIT = Gauge(
    "loyalty_consumer_last_commit_timestamp_seconds",
    "Unix time at which this process last committed a batch of the topic.",
    ["service", "topic"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "loyalty_outbox_oldest_age_seconds",
    "Age of the oldest event waiting in the outbox; 0 when it is empty.",
    ["service"],
)
OUTBOX_RELAY_UP = Gauge(
    "loyalty_outbox_relay_up",
    "1 while the outbox relay publishes, 0 while its passes fail for other than a brief outage.",
    ["service"],
)
DB_POOL_CONNECTIONS = Gauge(
    "loyalty_db_pool_connections",
    "Connections of the database pool, by state: in_use or idle.",
    ["service", "state"],
)
DB_POOL_MAX = Gauge(
    "loyalty_db_pool_max_connections",
    "The most connections the database pool may open.",
    ["service"],
)
READY = Gauge(
    "loyalty_ready",
    "1 when the process is ready to serve (every readiness check passes), else 0.",
    ["service"],
)
READINESS_CHECK = Gauge(
    "loyalty_readiness_check",
    "Result of one readiness check (database, broker, consumers, outbox_relay): 1 passes.",
    ["service", "check"],
)
PARTITIONS_SET_ASIDE = Gauge(
    "loyalty_consumer_partitions_set_aside",
    "Partitions of a topic held up by a record batch this process cannot decode (its codec's"
    " library is missing, or its compressed bytes are corrupt).",
    ["service", "topic"],
)
SCHEDULER_BACKLOG = Gauge(
    "loyalty_scheduler_backlog",
    "Messages whose time has come and which are not sent yet, by queue: customers' scheduled"
    " messages or staff mail.",
    ["service", "queue"],
)
NOTIFICATION_CHANNEL_UNAVAILABLE = Gauge(
    "loyalty_notification_channel_unavailable",
    "1 while a channel's server refuses the login or is not trusted: its messages wait.",
    ["service", "channel"],
)
SCHEDULER_OLDEST_DUE_AGE = Gauge(
    "loyalty_scheduler_oldest_due_age_seconds",
    "How long the oldest due message of the queue has waited past its time; 0 when none.",
    ["service", "queue"],
)
POINTS_REVERSED = Counter(
    "loyalty_points_reversed",
    "Points taken back by reversal entries (cancelled or refunded orders).",
    ["service", "reason"],
)
POINTS_REDEEMED = Counter(
    "loyalty_points_redeemed",
    "Points spent by customers.",
    ["service"],
)
POINTS_EXPIRED = Counter(
    "loyalty_points_expired",
    "Points that reached their expiry date unspent.",
    ["service"],
)
TIER_CHANGES = Counter(
    "loyalty_tier_changes",
    "Tier changes, by direction (up or down) and the tier reached.",
    ["service", "direction", "tier"],
)
NOTIFICATIONS = Counter(
    "loyalty_notifications",
    "Messages handled, by trigger, channel and outcome (sent, failed or suppressed).",
    ["service", "trigger", "channel", "outcome"],
)
PROGRAMME_RELOADS = Counter(
    "loyalty_programme_reloads",
    "Changes of the programme file: applied, or refused because the new file is not valid.",
    ["service", "outcome"],
)
