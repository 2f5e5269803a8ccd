"""The report as titled tables (rows of cells): what both the terminal and the page show."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.analytics.rendering import formats as fmt
from services.analytics.report import Report, Value


@dataclass(frozen=True, slots=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]


def headline(report: Report) -> Table:
    """The figures a shop watches first, one per row."""
    r, p, g = report.retention, report.purchases, report.programme
    cur = report.query.segment.currency
    rows = [
        (
            "Customers at start (S) / end (E) / new (N)",
            f"{r.customers_at_start} / {r.customers_at_end} / {r.new_customers}",
        ),
        ("Customer retention rate (E - N) / S", fmt.rate(r.retention_rate)),
        ("Churned customers (share)", f"{r.churned} ({fmt.rate(r.churn_rate)})"),
        ("Value lost to churn (their last year's spend)", fmt.money(r.churned_value, cur)),
        ("Orders / revenue", f"{p.orders} / {fmt.money(p.revenue, cur)}"),
        ("Repeat purchase rate", fmt.rate(p.repeat_purchase_rate)),
        (
            "Returning customers: revenue share / order share",
            f"{fmt.rate(p.returning.revenue_share)} / {fmt.rate(p.returning.order_share)}",
        ),
        (
            "New customers: revenue share / order share",
            f"{fmt.rate(p.new.revenue_share)} / {fmt.rate(p.new.order_share)}",
        ),
        (
            "Programme adoption (members / customers)",
            f"{fmt.rate(g.adoption_rate)} ({g.members} / {g.customers})",
        ),
        (
            "Points issued / redeemed / expired",
            f"{g.points_issued:,} / {g.points_redeemed:,} / {g.points_expired:,}",
        ),
        (
            "Redemption rate / breakage",
            f"{fmt.rate(g.redemption_rate)} / {fmt.rate(g.breakage_rate)}",
        ),
        (
            "Points liability",
            f"{g.outstanding_points:,} points = {fmt.money(g.liability_value, cur)}",
        ),
    ]
    return Table("Headline", ("figure", "value"), rows)


def value_table(report: Report) -> Table:
    cur = report.query.segment.currency

    def row(v: Value) -> tuple[str, ...]:
        return (
            v.tier or "all",
            str(v.customers),
            str(v.orders),
            fmt.money(v.revenue, cur),
            fmt.money(v.average_order_value, cur),
            fmt.amount(v.purchase_frequency, 2),
            fmt.money(v.customer_value, cur),
            fmt.amount(v.average_lifespan_years, 2),
            fmt.money(v.lifetime_value, cur),
        )

    header = (
        "tier",
        "customers",
        "orders",
        "revenue",
        "AOV",
        "frequency",
        "customer value",
        "lifespan (y)",
        "CLV",
    )
    return Table(
        "Customer value by tier",
        header,
        [row(report.value)] + [row(v) for v in report.value_by_tier],
    )


def messages_table(report: Report) -> Table:
    cur = report.query.segment.currency
    rows = [
        (
            m.trigger,
            str(m.sent),
            str(m.failed),
            str(m.suppressed),
            ", ".join(f"{k} {n}" for k, n in m.suppressed_by_reason.items()) or "-",
            f"{m.converted} ({fmt.rate(m.conversion_rate)})",
            str(m.attributed_orders),
            fmt.money(m.attributed_revenue, cur),
        )
        for m in report.messages
    ]
    header = (
        "trigger",
        "sent",
        "failed",
        "suppressed",
        "by reason",
        "converted",
        "orders",
        "revenue",
    )
    title = f"Messages (conversions: an order within {report.query.attribution_days} days)"
    return Table(title, header, rows)


def cohort_table(report: Report) -> Table:
    months = max((len(c.retention) for c in report.cohorts), default=0)
    rows = [
        (
            c.month,
            str(c.customers),
            *(fmt.rate(p) for p in c.retention),
            *("",) * (months - len(c.retention)),
        )
        for c in report.cohorts
    ]
    header = ("cohort", "customers", *(f"M{k}" for k in range(months)))
    return Table("Monthly cohorts: share ordering in each month since acquisition", header, rows)


def tiers_table(report: Report) -> Table:
    tiers = sorted(
        {t for m in report.tiers_by_month for t in m.customers}, key=lambda t: (t == "none", t)
    )
    rows = [(m.month, *(str(m.customers.get(t, 0)) for t in tiers)) for m in report.tiers_by_month]
    return Table("Customers per tier at each month's end", ("month", *tiers), rows)


def points_table(report: Report) -> Table:
    rows = [
        (m.month, f"{m.issued:,}", f"{m.redeemed:,}", f"{m.expired:,}")
        for m in report.points_by_month
    ]
    return Table("Points per month", ("month", "issued", "redeemed", "expired"), rows)


def all_tables(report: Report) -> list[Table]:
    return [
        headline(report),
        value_table(report),
        messages_table(report),
        cohort_table(report),
        tiers_table(report),
        points_table(report),
    ]


def render_text(report: Report) -> str:
    """Every table, aligned for a terminal."""
    q = report.query
    segment = ", ".join(f"{k} {v}" for k, v in q.segment.model_dump().items() if v is not None)
    lines = [f"Report {q.start} to {q.end} (exclusive), {q.time_zone}; {segment}", ""]
    for table in all_tables(report):
        widths = [
            max(len(str(c)) for c in col) for col in zip(table.header, *table.rows, strict=True)
        ]
        lines.append(table.title)
        for cells in (table.header, *table.rows):
            lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        lines.append("")
    return "\n".join(lines)
