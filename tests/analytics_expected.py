"""The report's figures computed again, independently, from the raw events of a test shop.

Plain Python over the events as published or read back from the topics: no SQL, no code of
the analytics service. Definitions are those of docs/analytics.md.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

CHURN = timedelta(days=180)
YEAR = timedelta(days=365)


def pct(part: Decimal | int, whole: Decimal | int) -> str | None:
    if whole == 0:
        return None
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.01"), ROUND_HALF_EVEN))


def vnd(amount: Decimal) -> str:
    return str(amount.quantize(Decimal(1), ROUND_HALF_EVEN))


@dataclass
class Order:
    customer: str
    total: Decimal
    paid_at: datetime | None = None
    refunded: Decimal = Decimal(0)
    full: bool = False
    cancelled: bool = False

    @property
    def counted(self) -> bool:
        return self.paid_at is not None and not self.cancelled and not self.full

    @property
    def net(self) -> Decimal:
        return max(self.total - self.refunded, Decimal(0))


@dataclass
class Shop:
    """Every event of the test shop, by kind."""

    shop_id: str
    signed_up: dict[str, datetime] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    points: list[tuple[str, str, int, datetime]] = field(default_factory=list)
    tiers: list[tuple[str, str, datetime]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def add(self, event: dict[str, Any]) -> None:
        """One event as JSON (a CloudEvent): what it says about the shop; repeats count once,
        other shops' events not at all."""
        kind, data = event["type"], event["data"]
        if event["id"] in self.seen or data.get("shop_id", "default") != self.shop_id:
            return  # the same customer ids at another shop are other customers
        self.seen.add(event["id"])
        at = datetime.fromisoformat(event["time"])
        if kind == "customer.signed_up":
            self.signed_up[data["customer_id"]] = at
        elif kind == "order.paid":
            total = Decimal(data["totals"]["total"]["amount"])
            self.orders[data["order_id"]] = Order(data["customer_id"], total, at)
        elif kind == "order.refunded":
            order = self.orders[data["order_id"]]
            order.refunded += Decimal(data["refund"]["amount"])
            order.full = order.full or data["full"]
        elif kind == "order.cancelled":
            self.orders[data["order_id"]].cancelled = True
        elif kind.startswith("points.") and kind != "points.expiring":
            self.points.append((data["customer_id"], kind[7:], data["delta"], at))
        elif kind == "tier.changed":
            effective = datetime.fromisoformat(data["effective_at"])
            self.tiers.append((data["customer_id"], data["to_tier"], effective))
        elif kind.startswith("notification."):
            self.messages.append({**data, "outcome": kind[13:], "at": at})

    def acquired(self, customer: str) -> datetime:
        paid = [o.paid_at for o in self.orders.values() if o.customer == customer and o.paid_at]
        return min([self.signed_up[customer], *paid])

    def counted(self, customer: str, before: datetime) -> list[Order]:
        return [
            o
            for o in self.orders.values()
            if o.customer == customer and o.counted and o.paid_at and o.paid_at < before
        ]

    def is_customer(self, customer: str, at: datetime) -> bool:
        acquired = self.acquired(customer)
        if acquired >= at:
            return False
        last = max([acquired, *(o.paid_at for o in self.counted(customer, at) if o.paid_at)])
        return last >= at - CHURN

    def tier(self, customer: str, at: datetime) -> str:
        changes = sorted((e, t) for c, t, e in self.tiers if c == customer and e < at)
        return changes[-1][1] if changes else "none"

    def joined(self, customer: str) -> datetime | None:
        times = [at for c, _, _, at in self.points if c == customer]
        times += [e for c, _, e in self.tiers if c == customer]
        return min(times) if times else None


def retention(shop: Shop, start: datetime, end: datetime) -> dict[str, Any]:
    people = [c for c in shop.signed_up if shop.acquired(c) < end]
    at_start = {c for c in people if shop.is_customer(c, start)}
    at_end = {c for c in people if shop.is_customer(c, end)}
    new = [c for c in people if shop.acquired(c) >= start]
    churned = at_start - at_end
    value = sum(
        (
            o.net
            for c in churned
            for o in shop.counted(c, start)
            if o.paid_at and o.paid_at >= start - YEAR
        ),
        Decimal(0),
    )
    return {
        "customers_at_start": len(at_start),
        "customers_at_end": len(at_end),
        "new_customers": len(new),
        "retention_rate": pct(len(at_end) - len(new), len(at_start)),
        "churned": len(churned),
        "churn_rate": pct(len(churned), len(at_start)),
        "churned_value": vnd(value),
    }


def in_period(shop: Shop, customer: str, start: datetime, end: datetime) -> list[Order]:
    return [o for o in shop.counted(customer, end) if o.paid_at and o.paid_at >= start]


def purchases(shop: Shop, start: datetime, end: datetime) -> dict[str, Any]:
    orders = {c: in_period(shop, c, start, end) for c in shop.signed_up}
    buyers = [c for c, found in orders.items() if found]
    returning = [c for c in buyers if shop.counted(c, start)]
    all_orders = sum(len(orders[c]) for c in buyers)
    revenue = sum((o.net for c in buyers for o in orders[c]), Decimal(0))
    r_orders = sum(len(orders[c]) for c in returning)
    r_revenue = sum((o.net for c in returning for o in orders[c]), Decimal(0))
    return {
        "orders": all_orders,
        "revenue": vnd(revenue),
        "purchasing_customers": len(buyers),
        "repeat_customers": sum(1 for c in buyers if len(orders[c]) > 1),
        "repeat_purchase_rate": pct(sum(1 for c in buyers if len(orders[c]) > 1), len(buyers)),
        "returning": {
            "customers": len(returning),
            "orders": r_orders,
            "revenue": vnd(r_revenue),
            "order_share": pct(r_orders, all_orders),
            "revenue_share": pct(r_revenue, revenue),
        },
        "new": {
            "customers": len(buyers) - len(returning),
            "orders": all_orders - r_orders,
            "revenue": vnd(revenue - r_revenue),
            "order_share": pct(all_orders - r_orders, all_orders),
            "revenue_share": pct(revenue - r_revenue, revenue),
        },
    }


def value(shop: Shop, start: datetime, end: datetime, tier: str | None) -> dict[str, Any]:
    people = [
        c
        for c in shop.signed_up
        if shop.acquired(c) < end and (tier is None or shop.tier(c, end) == tier)
    ]
    orders = {c: in_period(shop, c, start, end) for c in people}
    buyers = [c for c in people if orders[c]]
    count = sum(len(orders[c]) for c in buyers)
    revenue = sum((o.net for c in buyers for o in orders[c]), Decimal(0))
    spans = []
    for c in people:
        paid = sorted(o.paid_at for o in shop.counted(c, end) if o.paid_at)
        if paid:
            until = end if shop.is_customer(c, end) else paid[-1]
            spans.append(Decimal((until - paid[0]).total_seconds()) / 86400)
    lifespan = sum(spans, Decimal(0)) / len(spans) / Decimal("365.25") if spans else None
    per_year = None
    if count:
        per_year = revenue / len(buyers) * Decimal("365.25") / (end - start).days
    clv = None if per_year is None or lifespan is None else vnd(per_year * lifespan)
    return {
        "tier": tier,
        "customers": len(buyers),
        "orders": count,
        "revenue": vnd(revenue),
        "average_order_value": vnd(revenue / count) if count else None,
        "average_lifespan_years": None if lifespan is None else str(round(lifespan, 4)),
        "lifetime_value": clv,
    }


def programme(shop: Shop, start: datetime, end: datetime) -> dict[str, Any]:
    people = [c for c in shop.signed_up if shop.acquired(c) < end]
    members = [c for c in people if (j := shop.joined(c)) is not None and j < end]
    period = [(k, d) for c, k, d, at in shop.points if c in people and start <= at < end]
    issued = sum(d for k, d in period if k == "earned" or (k == "adjusted" and d > 0))
    redeemed = -sum(d for k, d in period if k == "redeemed")
    expired = -sum(d for k, d in period if k == "expired")
    return {
        "customers": len(people),
        "members": len(members),
        "adoption_rate": pct(len(members), len(people)),
        "points_issued": issued,
        "points_redeemed": redeemed,
        "points_expired": expired,
        "redemption_rate": pct(redeemed, issued),
        "breakage_rate": pct(expired, issued),
        "outstanding_points": sum(d for c, _, d, at in shop.points if c in people and at < end),
    }


def messages(shop: Shop, start: datetime, end: datetime, days: int) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"sent": 0, "failed": 0, "suppressed": 0, "suppressed_by_reason": {}}
    )
    sent = []
    for m in shop.messages:
        if not start <= m["at"] < end:
            continue
        figures = found[m["trigger"]]
        figures[m["outcome"]] += 1
        if m["outcome"] == "suppressed":
            reasons = figures["suppressed_by_reason"]
            reasons[m["reason"]] = reasons.get(m["reason"], 0) + 1
        if m["outcome"] == "sent":
            sent.append(m)
    converted: dict[str, set[str]] = defaultdict(set)
    orders: dict[str, list[Order]] = defaultdict(list)
    for order in shop.orders.values():
        before = [
            m
            for m in sent
            if m["customer_id"] == order.customer
            and order.counted
            and order.paid_at
            and m["at"] < order.paid_at <= m["at"] + timedelta(days=days)
        ]
        if before:
            last = min(before, key=lambda m: (-m["at"].timestamp(), m["notification_id"]))
            converted[last["trigger"]].add(last["notification_id"])
            orders[last["trigger"]].append(order)
    result = []
    for trigger in sorted(found.keys() | converted.keys()):
        figures = found[trigger]
        result.append(
            {
                "trigger": trigger,
                **figures,
                "suppressed_by_reason": dict(sorted(figures["suppressed_by_reason"].items())),
                "converted": len(converted[trigger]),
                "attributed_orders": len(orders[trigger]),
                "attributed_revenue": vnd(sum((o.net for o in orders[trigger]), Decimal(0))),
            }
        )
    return result


def month(at: datetime) -> str:
    return f"{at.year:04d}-{at.month:02d}"


def months_of(start: datetime, end: datetime) -> list[str]:
    found, at = [], start
    while at < end:
        found.append(month(at))
        at = (at.replace(day=1) + timedelta(days=32)).replace(day=1)
    return found


def cohorts(shop: Shop, start: datetime, end: datetime) -> list[dict[str, Any]]:
    names = months_of(start, end)
    groups: dict[str, list[str]] = defaultdict(list)
    for c in shop.signed_up:
        if start <= shop.acquired(c) < end:
            groups[month(shop.acquired(c))].append(c)
    result = []
    for name in sorted(groups):
        later = names[names.index(name) :]
        ordering = [
            sum(
                1
                for c in groups[name]
                if any(o.paid_at and month(o.paid_at) == m for o in shop.counted(c, end))
            )
            for m in later
        ]
        result.append({"month": name, "customers": len(groups[name]), "ordering": ordering})
    return result


def tiers_by_month(shop: Shop, start: datetime, end: datetime) -> list[dict[str, Any]]:
    result = []
    for name in months_of(start, end):
        first = datetime.fromisoformat(f"{name}-01T00:00:00+00:00")
        month_end = min((first + timedelta(days=32)).replace(day=1), end)
        counts: dict[str, int] = defaultdict(int)
        for c in shop.signed_up:
            if shop.acquired(c) < month_end and shop.acquired(c) < end:
                counts[shop.tier(c, month_end)] += 1
        counts.setdefault("none", 0)
        result.append({"month": name, "customers": dict(counts)})
    return result


def points_by_month(shop: Shop, start: datetime, end: datetime) -> list[dict[str, Any]]:
    found: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, kind, delta, at in shop.points:
        if start <= at < end:
            figures = found[month(at)]
            figures["issued"] += (
                delta if kind == "earned" or (kind == "adjusted" and delta > 0) else 0
            )
            figures["redeemed"] += -delta if kind == "redeemed" else 0
            figures["expired"] += -delta if kind == "expired" else 0
    return [{"month": m, **found[m]} for m in sorted(found)]
