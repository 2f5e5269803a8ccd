"""How a test session names its own database and the URL that leads to it (no I/O)."""

from __future__ import annotations

import pytest
from session_database import (
    database_of,
    fresh_database_wanted,
    session_database_name,
    with_database,
)

TOKEN = "0123456789ab"


def test_the_name_is_the_given_database_and_a_token() -> None:
    assert session_database_name("loyalty", TOKEN) == "loyalty_t0123456789ab"


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("Loyalty-CI", "loyalty_ci_t0123456789ab"),
        ("loyalty.test db", "loyalty_test_db_t0123456789ab"),
        ("9lives", "db9lives_t0123456789ab"),
        ("_x", "db_x_t0123456789ab"),
        ("", "db_t0123456789ab"),
        ("cà_phê", "c__ph__t0123456789ab"),
    ],
)
def test_the_name_is_a_plain_lower_case_identifier(base: str, expected: str) -> None:
    assert session_database_name(base, TOKEN) == expected


def test_a_long_name_is_cut_to_63_bytes_keeping_the_whole_token() -> None:
    name = session_database_name("a" * 100, TOKEN)
    assert len(name.encode()) == 63
    assert name.endswith(f"_t{TOKEN}")


def test_a_session_inside_a_session_keeps_both_tokens_while_they_fit() -> None:
    outer = session_database_name("loyalty", TOKEN)
    assert session_database_name(outer, "ba9876543210") == "loyalty_t0123456789ab_tba9876543210"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://loyalty:pw@127.0.0.1:5432/loyalty", "loyalty"),
        ("postgresql://app@db.example/app%20db?sslmode=require", "app db"),
        ("postgresql://app:pw@db.example:5432", "app"),
        ("postgresql://db.example/", "postgres"),
    ],
)
def test_the_database_of_a_url_defaults_to_the_role_then_postgres(url: str, expected: str) -> None:
    assert database_of(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://loyalty:loyalty@127.0.0.1:5432/loyalty",
            "postgresql://loyalty:loyalty@127.0.0.1:5432/loyalty_t1",
        ),
        (
            "postgres://app:p%40ss%2Fw@db.example:6543/app?sslmode=verify-full&sslrootcert=/ca.pem",
            "postgres://app:p%40ss%2Fw@db.example:6543/loyalty_t1"
            "?sslmode=verify-full&sslrootcert=/ca.pem",
        ),
        ("postgresql://app:pw@[::1]:5432/app", "postgresql://app:pw@[::1]:5432/loyalty_t1"),
        ("postgresql://app@db.example", "postgresql://app@db.example/loyalty_t1"),
        (
            "postgresql:///loyalty?host=/var/run/postgresql",
            "postgresql:///loyalty_t1?host=/var/run/postgresql",
        ),
    ],
)
def test_the_url_leads_to_the_new_database_and_keeps_everything_else(
    url: str, expected: str
) -> None:
    assert with_database(url, "loyalty_t1") == expected


@pytest.mark.parametrize(
    ("value", "wanted"), [("", True), ("1", True), ("0", False), ("no", False), (" OFF ", False)]
)
def test_the_fresh_database_can_be_turned_off(value: str, wanted: bool) -> None:
    assert fresh_database_wanted({"LOYALTY_TEST_FRESH_DATABASE": value}) is wanted
    assert fresh_database_wanted({}) is True
