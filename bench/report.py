"""Correctness checks, the printed table and bench/results/latest.json."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

RESULTS = Path(__file__).resolve().parent / "results"


async def verify(conn: asyncpg.Connection, expected: Counter[str]) -> dict[str, Any]:
    """Per customer, the ledger sum and the balance equal the expected points; no duplicates."""
    rows = await conn.fetch(
        """SELECT l.customer_id, sum(l.delta) AS points, count(*) AS entries,
                  count(DISTINCT l.source_event_id) AS sources, a.points_balance
           FROM earn.ledger l JOIN earn.accounts a USING (shop_id, customer_id)
           GROUP BY l.customer_id, a.points_balance"""
    )
    wrong = [
        r["customer_id"]
        for r in rows
        if r["points"] != expected[r["customer_id"]] or r["points"] != r["points_balance"]
    ]
    duplicates = sum(r["entries"] - r["sources"] for r in rows)
    missing = len(set(expected) - {r["customer_id"] for r in rows})
    return {
        "correct": not wrong and not duplicates and not missing,
        "customers_wrong": len(wrong),
        "duplicate_entries": duplicates,
        "customers_missing": missing,
    }


async def verify_by_customer(conn: asyncpg.Connection, expected: Counter[str]) -> bool:
    """verify, over any release's schema (with or without shops): per customer id, the ledger
    sum and the balances equal the expected points, and no event made two entries."""
    ledger = {
        r["customer_id"]: (r["points"], r["entries"] - r["sources"])
        for r in await conn.fetch(
            """SELECT customer_id, sum(delta) AS points, count(*) AS entries,
                      count(DISTINCT source_event_id) AS sources
               FROM earn.ledger GROUP BY customer_id"""
        )
    }
    balances = {
        r["customer_id"]: r["points"]
        for r in await conn.fetch(
            """SELECT customer_id, sum(points_balance) AS points FROM earn.accounts
               GROUP BY customer_id"""
        )
    }
    return set(ledger) == set(expected) and all(
        ledger[c] == (points, 0) and balances.get(c) == points for c, points in expected.items()
    )


async def verify_at_shops(
    conn: asyncpg.Connection, expected: Counter[tuple[str, str]]
) -> dict[str, Any]:
    """Per (shop, customer), the ledger sum and the balance equal the expected points; no
    duplicates; no points at a shop where the customer bought nothing."""
    rows = await conn.fetch(
        """SELECT l.shop_id, l.customer_id, sum(l.delta) AS points, count(*) AS entries,
                  count(DISTINCT l.source_event_id) AS sources, a.points_balance
           FROM earn.ledger l JOIN earn.accounts a USING (shop_id, customer_id)
           GROUP BY l.shop_id, l.customer_id, a.points_balance"""
    )
    found = {(r["shop_id"], r["customer_id"]): r for r in rows}
    wrong = [
        member
        for member, r in found.items()
        if r["points"] != expected[member] or r["points"] != r["points_balance"]
    ]
    duplicates = sum(r["entries"] - r["sources"] for r in rows)
    missing = len(set(expected) - set(found))
    return {
        "correct": not wrong and not duplicates and not missing,
        "members_wrong": len(wrong),
        "duplicate_entries": duplicates,
        "members_missing": missing,
        "members": len(expected),
    }


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
    }


def commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
        capture_output=True,
        text=True,
        check=False,
        cwd=RESULTS.parent.parent,
    )
    return out.stdout.strip() or "unknown"


def emit(name: str, figures: dict[str, Any]) -> Path:
    """Print the figures as a table and write them, with commit and machine, as JSON."""
    print(f"\n{name} benchmark")
    for key, value in _flatten(figures):
        print(f"  {key:42} {value}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "latest.json"
    existing = json.loads(path.read_text()) if path.exists() else {}
    existing[name] = {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "figures": figures,
    }
    path.write_text(json.dumps(existing, indent=2) + "\n")
    print(f"\nwritten to {path}")
    return path


def _flatten(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in figures.items():
        if isinstance(value, dict):
            out += _flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out
