"""The condition earn's adapters look rows up by (shop, id) with holds for exactly the pairs
asked, whether the batch has one shop or several."""

from __future__ import annotations

import asyncpg
import pytest

from services.earn.adapters.pairs import pair_in

ROWS = [("a", "1"), ("a", "2"), ("b", "1"), ("b", "3"), ("c", "2")]


async def matching(db: asyncpg.Pool, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    where, args = pair_in("s", "i", pairs)
    rows = await db.fetch(
        f"""SELECT s, i FROM unnest($3::text[], $4::text[]) AS t(s, i) WHERE {where}""",
        *args,
        [s for s, _ in ROWS],
        [i for _, i in ROWS],
    )
    return {(r["s"], r["i"]) for r in rows}


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([("a", "1"), ("a", "3")], {("a", "1")}),
        ([("b", "1"), ("b", "1")], {("b", "1")}),
        ([("a", "1"), ("b", "3")], {("a", "1"), ("b", "3")}),
        # Each list holds a match for the other's shop, but no pair does.
        ([("a", "3"), ("b", "2")], set()),
        ([], set()),
    ],
    ids=["one shop", "one shop twice", "two shops", "no crossed pairs", "none"],
)
async def test_pairs_match_only_themselves(
    db: asyncpg.Pool, pairs: list[tuple[str, str]], expected: set[tuple[str, str]]
) -> None:
    assert await matching(db, pairs) == expected
