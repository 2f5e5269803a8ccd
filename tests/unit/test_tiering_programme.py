"""The programme file: the shipped example, the documented examples, and errors that say where."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from services.tiering.domain.rules import Basis, DowngradeMode, WindowKind
from services.tiering.programme import (
    EXAMPLE,
    ProgrammeError,
    load_programme,
    parse_programme,
)
from services.tiering.settings import TieringSettings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "tiering.md"


def valid() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text(), parse_float=Decimal)


def test_the_shipped_example_is_member_silver_gold_platinum_by_spend_in_vnd() -> None:
    prog = load_programme()

    assert [t.code for t in prog.tiers] == ["member", "silver", "gold", "platinum"]
    assert (prog.basis, prog.window.kind, prog.window.days) == (
        Basis.SPEND,
        WindowKind.ROLLING,
        365,
    )
    assert prog.units == ("VND",)
    assert prog.tier("silver").multiplier == Decimal("1.25")
    assert prog.downgrade.mode is DowngradeMode.END_OF_PERIOD


def test_every_programme_in_the_documentation_is_valid() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)

    programmes = [parse_programme(tomllib.loads(b, parse_float=Decimal)) for b in blocks]

    assert len(programmes) >= 2
    assert {p.basis for p in programmes} == {Basis.SPEND, Basis.POINTS}


def test_the_path_comes_from_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "programme.toml"
    path.write_text(EXAMPLE.read_text().replace('"Gold"', '"Vàng"'))
    monkeypatch.setenv("LOYALTY_TIERING_PROGRAMME", str(path))

    prog = load_programme(TieringSettings().tiering_programme)

    assert prog.tier("gold").name == "Vàng"


def test_a_missing_file_is_reported_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ProgrammeError, match=r"nowhere\.toml: cannot be read"):
        load_programme(tmp_path / "nowhere.toml")


def test_a_file_that_is_not_toml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("tiers = [")
    with pytest.raises(ProgrammeError, match="not valid TOML"):
        load_programme(path)


def change(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Set (or, with value None, delete) one dotted setting such as tiers.1.keep."""
    *parents, last = path.split(".")
    node: Any = raw
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is None:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("time_zone", "Mars/Olympus", "time_zone: 'Mars/Olympus' is not an IANA time zone"),
        ("basis", "balance", "basis: Input should be 'spend' or 'points'"),
        ("window.days", None, "window.days: required when window.kind is 'rolling'"),
        ("window.kind", "lifetime", "downgrade.mode: 'end_of_period' needs a window with periods"),
        (
            "downgrade.mode",
            "grace",
            "downgrade.grace_days: required when downgrade.mode is 'grace'",
        ),
        ("downgrade.steps", "two", "downgrade.steps: Input should be 'one' or 'to_qualifying'"),
        (
            "tiers.0.multiplier",
            Decimal(2),
            "tiers[0].multiplier: the first tier's multiplier must be 1",
        ),
        (
            "tiers.1.multiplier",
            Decimal("0.5"),
            "tiers[1].multiplier: Input should be greater than or equal to 1",
        ),
        ("tiers.1.enter", None, "tiers[1].enter: required (or set invite_only = true)"),
        (
            "tiers.1.enter",
            {"VND": "5000000.5"},
            "tiers[1].enter.VND: has more decimal places than VND allows",
        ),
        ("tiers.1.enter", {"XYZ": "5"}, "tiers[1].enter.XYZ: not an ISO 4217 currency code"),
        ("tiers.1.enter", {"VND": "-5"}, "tiers[1].enter.VND: Input should be greater than 0"),
        ("tiers.1.keep", {"VND": "6000000"}, "tiers[1].keep.VND: must not be more than enter"),
        ("tiers.1.keep", {"USD": "10"}, "tiers[1].keep.USD: there is no enter threshold in USD"),
        (
            "tiers.2.enter",
            {"VND": "5000000"},
            "tiers[2].enter.VND: must be more than tiers[1].enter.VND",
        ),
        ("tiers.2.enter", {"USD": "500"}, "tiers[2].enter: names USD but tiers[1] names VND"),
        ("tiers.2.code", "silver", "tiers[2].code: 'silver' is also tiers[1]"),
        ("tiers.1.colour", "grey", "tiers[1].colour: Extra inputs are not permitted"),
        ("tiers.1.enter", 5000, "tiers[1].enter.points: not an ISO 4217 currency code"),
    ],
)
def test_each_problem_names_the_setting(path: str, value: Any, message: str) -> None:
    with pytest.raises(ProgrammeError) as caught:
        parse_programme(change(valid(), path, value), source="shop.toml")

    assert "tiering programme shop.toml is not valid" in str(caught.value)
    assert message in str(caught.value)


def test_points_thresholds_are_whole_numbers() -> None:
    raw = valid()
    raw["basis"] = "points"
    for tier in raw["tiers"][1:]:
        tier["enter"], tier["keep"] = 1000 * len(tier["name"]), None
        del tier["keep"]
    raw["tiers"][1]["enter"] = Decimal("10.5")

    with pytest.raises(
        ProgrammeError, match=r"tiers\[1\]\.enter: must be a whole number of points"
    ):
        parse_programme(raw)


def test_invite_only_tiers_take_no_thresholds_and_are_not_on_the_ladder() -> None:
    raw = valid()
    raw["tiers"].append({"code": "black", "name": "Black", "invite_only": True, "multiplier": 3})

    prog = parse_programme(raw)

    assert prog.tier("black").rank == 4
    assert "black" not in [t.code for t in prog.ladder]
    raw["tiers"][-1]["enter"] = {"VND": "1"}
    with pytest.raises(ProgrammeError, match=r"tiers\[4\]\.enter: an invite-only tier has no"):
        parse_programme(raw)


def test_all_problems_are_reported_at_once() -> None:
    raw = change(change(valid(), "time_zone", "Nowhere"), "tiers.1.keep", {"VND": "9000000"})

    with pytest.raises(ProgrammeError) as caught:
        parse_programme(raw)

    assert "time_zone" in str(caught.value)
    assert "tiers[1].keep.VND" in str(caught.value)
