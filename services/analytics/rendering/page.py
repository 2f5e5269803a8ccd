"""The report as one self-contained HTML page: inline CSS and SVG, no script, no external file."""

from __future__ import annotations

from html import escape

from services.analytics.rendering import charts
from services.analytics.rendering import formats as fmt
from services.analytics.rendering.sections import Table, all_tables
from services.analytics.report import Report

STYLE = """
body { font-family: system-ui, sans-serif; color: #1e293b; margin: 24px; background: #f8fafc; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.meta { color: #64748b; margin-bottom: 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 10px 14px;
        min-width: 150px; }
.card .v { font-size: 20px; font-weight: 600; } .card .k { color: #64748b; font-size: 12px; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 12px;
         margin: 0; } figcaption { font-weight: 600; margin-bottom: 8px; }
.legend span { display: inline-block; margin-right: 12px; font-size: 12px; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid #e2e8f0; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
"""


def _legend(items: list[tuple[str, str]]) -> str:
    spans = "".join(
        f'<span><i style="background:{c}"></i>{escape(name)}</span>' for name, c in items
    )
    return f'<div class="legend">{spans}</div>'


def _figure(caption: str, svg: str, legend: str = "") -> str:
    return f"<figure><figcaption>{escape(caption)}</figcaption>{legend}{svg}</figure>"


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    return f"<h2>{escape(table.title)}</h2><table><tr>{head}</tr>{rows}</table>"


def _cards(report: Report) -> str:
    cur = report.query.segment.currency
    r, p, g, v = report.retention, report.purchases, report.programme, report.value
    cards = [
        ("Retention rate", fmt.rate(r.retention_rate)),
        ("Churn", f"{r.churned} ({fmt.rate(r.churn_rate)})"),
        ("Repeat purchase rate", fmt.rate(p.repeat_purchase_rate)),
        ("Returning revenue share", fmt.rate(p.returning.revenue_share)),
        ("Average order value", fmt.money(v.average_order_value, cur)),
        ("Customer lifetime value", fmt.money(v.lifetime_value, cur)),
        ("Programme adoption", fmt.rate(g.adoption_rate)),
        ("Redemption rate", fmt.rate(g.redemption_rate)),
        ("Breakage", fmt.rate(g.breakage_rate)),
        ("Points liability", fmt.money(g.liability_value, cur)),
    ]
    body = "".join(
        f'<div class="card"><div class="v">{escape(val)}</div><div class="k">{escape(key)}</div>'
        "</div>"
        for key, val in cards
    )
    return f'<div class="cards">{body}</div>'


def _charts(report: Report) -> str:
    tiers = sorted(
        {t for m in report.tiers_by_month for t in m.customers}, key=lambda t: (t == "none", t)
    )
    tier_legend = _legend(list(charts.tier_colours(tiers).items()))
    points_legend = _legend(
        [("issued", charts.ISSUED), ("redeemed", charts.REDEEMED), ("expired", charts.EXPIRED)]
    )
    message_legend = _legend([("sent", charts.SENT), ("converted", charts.CONVERTED)])
    return (
        '<div class="charts">'
        + "".join(
            (
                _figure("Cohort retention", charts.cohort_heat_map(report.cohorts)),
                _figure(
                    "Tiers over time", charts.tier_distribution(report.tiers_by_month), tier_legend
                ),
                _figure(
                    "Points issued, redeemed, expired",
                    charts.points_flow(report.points_by_month),
                    points_legend,
                ),
                _figure("Message conversions", charts.conversions(report.messages), message_legend),
            )
        )
        + "</div>"
    )


def render_html(report: Report) -> str:
    q = report.query
    segment = ", ".join(f"{k}: {v}" for k, v in q.segment.model_dump().items() if v is not None)
    title = f"Loyalty report {q.start} to {q.end}"
    meta = (
        f"Period {q.start} up to {q.end} (exclusive), {q.time_zone}; {segment}; "
        f"churn after {q.churn_after_days} days without an order; "
        f"generated {report.generated_at:%Y-%m-%d %H:%M %Z}"
    )
    tables = "".join(_table(t) for t in all_tables(report))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f'<h1>{escape(title)}</h1><div class="meta">{escape(meta)}</div>'
        f"{_cards(report)}<h2>Charts</h2>{_charts(report)}{tables}</body></html>\n"
    )
