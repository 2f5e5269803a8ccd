"""Prometheus metrics of the tiering service alone (tier changes are shared.metrics')."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TIER_WARNINGS = Counter(
    "loyalty_tier_warnings",
    "tier.at_risk events written to the outbox.",
    ["service"],
)
EVALUATION_DURATION = Histogram(
    "loyalty_tier_evaluation_duration_seconds",
    "Time of one scheduled evaluation pass over every due customer.",
    ["service"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900),
)
EVALUATED_CUSTOMERS = Counter(
    "loyalty_tier_evaluated_customers",
    "Customers the scheduled evaluation brought up to date.",
    ["service"],
)
