"""The earn programme file: the examples of docs/programme.md run, bad files are refused with
errors that name the setting, and a changed file is picked up without a restart."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.earn.programme import EXAMPLE, ProgrammeError, load_programme, parse_programme
from services.earn.programme_source import ProgrammeSource

DOCS = Path(__file__).parents[2] / "docs" / "programme.md"
BASE = 'time_zone = "Asia/Ho_Chi_Minh"\n[currencies.VND]\nper_amount = 10000\n'


def documented_programmes() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), flags=re.S)


def test_the_docs_show_complete_programmes_for_a_vnd_and_a_usd_shop_and_both_run() -> None:
    examples = documented_programmes()
    loaded = [parse_programme(tomllib.loads(text, parse_float=Decimal)) for text in examples]

    currencies = {code for p in loaded for code in p.currencies}
    assert {"VND", "USD"} <= currencies
    complete = [p for p in loaded if p.campaigns and p.rewards and p.punch_cards and p.cashback]
    assert {next(iter(p.currencies)) for p in complete} >= {"VND", "USD"}


def test_the_shipped_example_is_what_runs_without_a_file() -> None:
    programme = load_programme()

    assert programme.currencies["VND"].per_amount == Decimal(10_000)
    assert programme.pending.return_window_days == 0
    assert programme.expiry.mode == "never"
    assert ProgrammeSource(None).path == EXAMPLE


def raw(extra: str) -> dict[str, Any]:
    return tomllib.loads(BASE + extra, parse_float=Decimal)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("[currencies.XYZ]\nper_amount = 1\n", "currencies.XYZ.per_amount: 'XYZ' is not an ISO"),
        ("[currencies.USD]\nper_amount = 0.001\n", "has more decimal places than USD allows"),
        (
            "[currencies.USD]\nper_amount = 0\n",
            "currencies.USD.per_amount: Input should be greater",
        ),
        ("[earning_base]\ninclude_tips = true\n", "earning_base.include_tips: Extra inputs"),
        ("[[products]]\nmultiplier = 2\n", "products[0]: name skus or categories"),
        (
            '[[campaigns]]\ncode = "x"\nname = "X"\nstarts_at = 2026-12-02T00:00:00Z\n'
            "ends_at = 2026-12-01T00:00:00Z\nmultiplier = 2\n",
            "campaigns[0].ends_at: must be after starts_at",
        ),
        (
            '[[campaigns]]\ncode = "x"\nname = "X"\nstarts_at = 2026-12-01T00:00:00Z\n'
            "ends_at = 2026-12-02T00:00:00Z\nmultiplier = 2\nbonus_points = 5\n",
            "campaigns[0]: give exactly one of multiplier and bonus_points",
        ),
        (
            '[[campaigns]]\ncode = "x"\nname = "X"\nstarts_at = 2026-12-01T00:00:00\n'
            "ends_at = 2026-12-02T00:00:00Z\nmultiplier = 2\n",
            "campaigns[0].starts_at: Input should have timezone info",
        ),
        ("[cashback.percent]\nUSD = 2\n", "cashback.percent.USD: USD is not one of currencies"),
        (
            '[[punch_cards]]\ncode = "c"\nname = "C"\nevery = 10\ncategories = ["coffee"]\n'
            "reward_points = 5\n[punch_cards.min_amount]\n",
            "punch_cards[0].min_amount.VND: required for every currency",
        ),
        (
            '[[rewards]]\ncode = "v"\nname = "V"\nkind = "voucher"\ncost_points = 100\n',
            "rewards[0].value: required for a voucher reward",
        ),
        (
            '[[rewards]]\ncode = "v"\nname = "V"\nkind = "gift"\ncost_points = 100\n',
            "rewards[0].sku: required for a gift reward",
        ),
        ('[expiry]\nmode = "sometimes"\n', "expiry.mode: Input should be 'never'"),
        ('time_zone = "Mars/Olympus"\n', "time_zone: 'Mars/Olympus' is not an IANA time zone"),
    ],
)
def test_a_bad_programme_is_refused_naming_the_setting(extra: str, message: str) -> None:
    text = extra if extra.startswith("time_zone") else None
    content = (
        raw(extra)
        if text is None
        else tomllib.loads(text + "[currencies.VND]\nper_amount = 1\n", parse_float=Decimal)
    )

    with pytest.raises(ProgrammeError) as refused:
        parse_programme(content, source="shop.toml")

    assert "earn programme shop.toml is not valid" in str(refused.value)
    assert message in str(refused.value)


def test_every_problem_is_listed_at_once() -> None:
    content = raw("[[products]]\nmultiplier = 2\n[expiry]\nmonths = -1\n")

    with pytest.raises(ProgrammeError) as refused:
        parse_programme(content)

    assert "expiry.months" in str(refused.value)


def test_a_file_that_is_not_toml_or_missing_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[currencies.VND\n", encoding="utf-8")

    with pytest.raises(ProgrammeError, match="not valid TOML"):
        load_programme(broken)
    with pytest.raises(ProgrammeError, match="cannot be read"):
        load_programme(tmp_path / "absent.toml")


def test_a_changed_file_is_picked_up_and_a_bad_change_keeps_the_programme_in_force(
    tmp_path: Path,
) -> None:
    path = tmp_path / "programme.toml"
    path.write_text(BASE + "points = 1\n", encoding="utf-8")
    source = ProgrammeSource(path, poll_s=1)
    assert source.reload_if_changed() is False  # nothing changed yet

    path.write_text(BASE + "points = 2\n", encoding="utf-8")
    assert source.reload_if_changed() is True
    assert source.current.currencies["VND"].points == 2

    path.write_text(BASE + "points = 0\n", encoding="utf-8")
    assert source.reload_if_changed() is False
    assert source.current.currencies["VND"].points == 2  # the valid programme stays

    path.write_text(BASE + "points = 3\n", encoding="utf-8")
    assert source.reload_if_changed() is True
    assert source.current.currencies["VND"].points == 3


def test_a_bad_file_at_start_up_stops_the_service(tmp_path: Path) -> None:
    path = tmp_path / "programme.toml"
    path.write_text(BASE + "points = 0\n", encoding="utf-8")

    with pytest.raises(ProgrammeError, match=r"currencies\.VND\.points"):
        ProgrammeSource(path)
