"""The segment's customers and their orders, as temporary tables of one report transaction.

`pop` holds the customers of the segment acquired before the period's end, with their tier
then; a customer is a (shop, customer id): the same id at two shops is two customers, each
with their own shop's orders, points, tiers and messages. `holder_id` is who holds the
customer's account at the period's end: the shop, or its coalition while the shop is a member
(`held`, from the shop directory's `shop_memberships`); a member's tier is the coalition's, and
its points those of the coalition's account entered at that shop. `stats` adds, per customer,
what their counted orders (paid, neither cancelled nor fully refunded, in the report's
currency) say about the period.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import asyncpg

from shared.db import Connection

# Net revenue of a counted order: its total less partial refunds.
NET = "GREATEST(o.total - o.refunded, 0)"
COUNTED = "o.paid_at IS NOT NULL AND NOT o.cancelled AND NOT o.fully_refunded"


@dataclass(frozen=True, slots=True)
class Scope:
    """The bound values every report query reads."""

    schema: str
    starts_at: datetime
    ends_at: datetime
    time_zone: str
    currency: str
    shop: str | None
    tier: str | None
    cohort_start: datetime | None
    cohort_end: datetime | None
    churn_after: timedelta
    attribution: timedelta
    # `shop` is a coalition: its members' customers, orders and messages, relabelled as the
    # coalition's (`coalition_*` tables of the transaction), each customer once.
    coalition: bool = False
    # Who holds the accounts of every customer of a report of one shop (the shop, or its
    # coalition at the period's end; the coalition itself for a coalition's report), set by
    # `create_held`; None for every shop's report.
    holder: str | None = None

    def orders_filter(self, alias: str = "o") -> str:
        """Counted orders of the report's currency (and shop): $1 currency, $2 shop."""
        counted = COUNTED.replace("o.", f"{alias}.")
        return f"{counted} AND {alias}.currency = $1 AND ($2::text IS NULL OR {alias}.shop_id = $2)"

    def table(self, name: str) -> str:
        """Where the facts kept by real shop (customers, orders, notifications) are read."""
        return f"coalition_{name}" if self.coalition else f"{self.schema}.{name}"

    def points_of(self, holder: str | None = None) -> str:
        """The points entries of a customer of `pop` (p): their account's, made at their shop;
        for a coalition's report, every entry of the account. `holder` is the parameter that
        `holder_args` binds: a report of one shop then reads the holder's entries alone from
        the index by customer, where the join by `pop` made PostgreSQL scan every entry."""
        account = "pt.shop_id = p.holder_id AND pt.customer_id = p.customer_id"
        if holder is not None and self.holder is not None:
            account += f" AND pt.shop_id = {holder}"
        return account if self.coalition else f"{account} AND {AT_THE_SHOP}"

    def holder_args(self) -> list[str]:
        """The value of `points_of`'s `holder` parameter: none for every shop's report."""
        return [] if self.holder is None else [self.holder]

    def notifications_of(self, shop: str) -> str:
        """A condition on the messages (n) of a report of one shop, `shop` its parameter:
        like `points_of`'s holder, it lets PostgreSQL read that shop's messages alone."""
        return "" if self.shop is None else f"AND n.shop_id = {shop}"


AT_THE_SHOP = "COALESCE(pt.at_shop, pt.shop_id) = p.shop_id"


async def create_held(conn: Connection, scope: Scope) -> Scope:
    """`held`: the coalition of each member shop at the period's end (its latest version
    started by then; a shop in no coalition is not in it and holds its own accounts). Returns
    the scope of a coalition's report when the shop asked for is a coalition then, and the
    holder of a report of one shop."""
    await conn.execute(
        f"""CREATE TEMP TABLE held ON COMMIT DROP AS
            SELECT shop_id, coalition_id FROM (
                SELECT DISTINCT ON (shop_id) shop_id, coalition_id
                FROM {scope.schema}.shop_memberships WHERE effective_from < $1
                ORDER BY shop_id, effective_from DESC, version DESC) latest
            WHERE coalition_id IS NOT NULL""",
        scope.ends_at,
    )
    # Statistics, or PostgreSQL guesses hundreds of rows where there are a few: joined to
    # every customer, that guess made `pop`'s estimated cost pass JIT's inlining and
    # optimisation thresholds, 170 ms of compiling per report at 100,000 customers.
    await conn.execute("ANALYZE held")
    if scope.shop is None:
        return scope
    if not await conn.fetchval(
        "SELECT EXISTS (SELECT FROM held WHERE coalition_id = $1)", scope.shop
    ):
        coalition = await conn.fetchval(
            "SELECT coalition_id FROM held WHERE shop_id = $1", scope.shop
        )
        return replace(scope, holder=coalition or scope.shop)
    await _relabel_members(conn, scope.schema, scope.shop)
    return replace(scope, coalition=True, holder=scope.shop)


async def _relabel_members(conn: Connection, schema: str, coalition: str) -> None:
    """The members' customers (one row per customer id, acquired at their first shop),
    orders (ids scoped by shop, as two shops' ids may match) and messages, as the coalition's."""
    members = "JOIN held h ON h.shop_id = x.shop_id AND h.coalition_id = $1"
    await conn.execute(
        f"""CREATE TEMP TABLE coalition_customers ON COMMIT DROP AS
            SELECT $1::text AS shop_id, x.customer_id, min(x.acquired_at) AS acquired_at
            FROM {schema}.customers x {members}
            GROUP BY x.customer_id""",
        coalition,
    )
    await conn.execute(
        f"""CREATE TEMP TABLE coalition_orders ON COMMIT DROP AS
            SELECT $1::text AS shop_id,
                   length(x.shop_id) || ':' || x.shop_id || ':' || x.order_id AS order_id,
                   x.customer_id, x.currency, x.total, x.paid_at, x.refunded, x.fully_refunded,
                   x.cancelled
            FROM {schema}.orders x {members}""",
        coalition,
    )
    await conn.execute(
        f"""CREATE TEMP TABLE coalition_notifications ON COMMIT DROP AS
            SELECT $1::text AS shop_id, x.notification_id, x.customer_id, x.trigger,
                   x.outcome, x.reason, x.at
            FROM {schema}.notifications x {members}""",
        coalition,
    )
    for name in ("customers", "orders", "notifications"):
        await conn.execute(f"ANALYZE coalition_{name}")


async def create_population(conn: Connection, scope: Scope) -> None:
    """`pop` and `stats`, after `create_held`."""
    s = scope.schema
    await conn.execute(
        f"""CREATE TEMP TABLE pop ON COMMIT DROP AS
            SELECT * FROM (
                SELECT c.shop_id, c.customer_id, COALESCE(h.coalition_id, c.shop_id) AS holder_id,
                       c.acquired_at, COALESCE(t.tier, 'none') AS tier
                FROM {scope.table("customers")} c
                LEFT JOIN held h ON h.shop_id = c.shop_id
                LEFT JOIN LATERAL (
                    SELECT tc.tier FROM {s}.tier_changes tc
                    WHERE tc.shop_id = COALESCE(h.coalition_id, c.shop_id)
                      AND tc.customer_id = c.customer_id
                      AND tc.effective_at < $1
                    ORDER BY tc.effective_at DESC LIMIT 1) t ON true
                WHERE c.acquired_at < $1
                  AND ($2::text IS NULL OR c.shop_id = $2)
                  AND ($3::timestamptz IS NULL
                       OR (c.acquired_at >= $3 AND c.acquired_at < $4))) p
            WHERE $5::text IS NULL OR p.tier = $5""",
        scope.ends_at,
        scope.shop,
        scope.cohort_start,
        scope.cohort_end,
        scope.tier,
    )
    # A key rather than a unique index: grouping `stats` by it alone (the other columns depend
    # on it) lets the planner merge-join the counted orders in key order, where the four
    # columns' group made it hash, and spill, twice as slowly (1M orders).
    await conn.execute("ALTER TABLE pop ADD PRIMARY KEY (shop_id, customer_id)")
    await conn.execute("ANALYZE pop")
    await conn.execute(
        f"""CREATE TEMP TABLE stats ON COMMIT DROP AS
            SELECT p.shop_id, p.customer_id, p.acquired_at, p.tier,
                   min(o.paid_at) AS first_order,
                   max(o.paid_at) FILTER (WHERE o.paid_at < $3) AS last_before_start,
                   max(o.paid_at) AS last_before_end,
                   count(o.paid_at) FILTER (WHERE o.paid_at >= $3) AS orders,
                   COALESCE(sum({NET}) FILTER (WHERE o.paid_at >= $3), 0) AS revenue,
                   COALESCE(sum({NET}) FILTER (
                       WHERE o.paid_at >= $3::timestamptz - interval '365 days'
                         AND o.paid_at < $3), 0) AS revenue_year_before
            FROM pop p
            LEFT JOIN {scope.table("orders")} o
                 ON o.shop_id = p.shop_id AND o.customer_id = p.customer_id
                 AND o.paid_at < $4 AND {scope.orders_filter()}
            GROUP BY p.shop_id, p.customer_id""",
        scope.currency,
        scope.shop,
        scope.starts_at,
        scope.ends_at,
    )
    await conn.execute("ANALYZE stats")


# A customer "is a customer" at an instant T when acquired before T and active (acquired or
# ordered) within the churn window before T.
def at_start(start: str, window: str) -> str:
    return (
        f"(st.acquired_at < {start}::timestamptz AND GREATEST(st.acquired_at,"
        f" st.last_before_start) >= {start}::timestamptz - {window}::interval)"
    )


def at_end(end: str, window: str) -> str:
    return (
        f"(GREATEST(st.acquired_at, st.last_before_end) >= {end}::timestamptz - {window}::interval)"
    )


AT_START, AT_END = at_start("$1", "$3"), at_end("$2", "$3")


async def read_retention(conn: Connection, scope: Scope) -> asyncpg.Record:
    row = await conn.fetchrow(
        f"""SELECT count(*) FILTER (WHERE {AT_START}) AS at_start,
                   count(*) FILTER (WHERE {AT_END}) AS at_end,
                   count(*) FILTER (WHERE st.acquired_at >= $1) AS new,
                   count(*) FILTER (WHERE {AT_START} AND NOT {AT_END}) AS churned,
                   COALESCE(sum(st.revenue_year_before)
                            FILTER (WHERE {AT_START} AND NOT {AT_END}), 0) AS churned_value
            FROM stats st""",
        scope.starts_at,
        scope.ends_at,
        scope.churn_after,
    )
    assert row is not None  # an aggregate always returns a row
    return row


async def read_purchases(conn: Connection, scope: Scope) -> asyncpg.Record:
    row = await conn.fetchrow(
        """SELECT COALESCE(sum(orders), 0)::bigint AS orders,
                  COALESCE(sum(revenue), 0) AS revenue,
                  count(*) FILTER (WHERE orders > 0) AS purchasing,
                  count(*) FILTER (WHERE orders > 1) AS repeating,
                  count(*) FILTER (WHERE orders > 0 AND first_order < $1) AS returning,
                  COALESCE(sum(orders) FILTER (WHERE first_order < $1), 0)::bigint
                      AS returning_orders,
                  COALESCE(sum(revenue) FILTER (WHERE first_order < $1), 0) AS returning_revenue
           FROM stats""",
        scope.starts_at,
    )
    assert row is not None
    return row


async def read_value(conn: Connection, scope: Scope) -> list[asyncpg.Record]:
    """Per tier, and for all tiers together (tier NULL): the inputs of AOV, frequency and CLV.

    A customer's lifespan runs from their first order to their last, or to the period's end
    while they are still a customer then.
    """
    return await conn.fetch(
        f"""SELECT st.tier,
                   count(*) FILTER (WHERE st.orders > 0) AS customers,
                   COALESCE(sum(st.orders), 0)::bigint AS orders,
                   COALESCE(sum(st.revenue), 0) AS revenue,
                   avg(EXTRACT(EPOCH FROM (
                       CASE WHEN {at_end("$1", "$2")} THEN $1 ELSE st.last_before_end END
                       - st.first_order)) / 86400)
                       FILTER (WHERE st.first_order IS NOT NULL) AS lifespan_days
            FROM stats st
            GROUP BY GROUPING SETS ((st.tier), ())
            ORDER BY st.tier NULLS FIRST""",
        scope.ends_at,
        scope.churn_after,
    )
