"""The SQL condition that a row's (shop, id) is one of a batch's pairs, and its arguments."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def pair_in(
    shop_column: str, id_column: str, pairs: Collection[tuple[str, str]], *, first: int = 1
) -> tuple[str, list[Any]]:
    """A condition on `shop_column` and `id_column` that holds for exactly these (shop, id)
    pairs, with the two arguments it takes from parameter `first` on.

    A batch of one shop compares its ids as one list (`id = ANY(...)`), as before shops: then
    PostgreSQL filters a scan by a hashed list, or probes the key once per id. The pairs joined
    with `unnest`, the only right form for several shops, cost it a hashed aggregate of the
    pairs and a join per batch: with one shop that made the (shop, order) and (shop, customer)
    lookups of an order.paid batch 2 to 3 times dearer (pg_stat_statements over a replay,
    docs/performance.md)."""
    shops = {shop for shop, _ in pairs}
    if len(shops) == 1:
        return (
            f"{shop_column} = ${first}::text AND {id_column} = ANY(${first + 1}::text[])",
            [shops.pop(), [id_ for _, id_ in pairs]],
        )
    # The pairs, not each list: `shop = ANY(shops) AND id = ANY(ids)` may probe the key for
    # every combination of the two lists, many times the number of pairs.
    return (
        f"({shop_column}, {id_column}) IN "
        f"(SELECT * FROM unnest(${first}::text[], ${first + 1}::text[]))",
        [[shop for shop, _ in pairs], [id_ for _, id_ in pairs]],
    )
