"""The programme forms: the fields a document offers, a form applied as a one-line change with
its comments kept, values refused before the API is asked, and errors found by location."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest

from services.console.domain import programme_forms as forms

TEMPLATES = Path(forms.__file__).parents[2] / "shops" / "templates" / "vn-fashion"
EARN = (TEMPLATES / "earn.toml").read_text()
TIERS = (TEMPLATES / "tiers.toml").read_text()


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_the_earn_form_offers_rates_rewards_and_expiry_but_not_product_rules() -> None:
    fields = {f.path: f for f in forms.form_fields("earn", EARN)}
    assert fields["currencies.VND.per_amount"].value == "10000"
    assert fields["currencies.VND.per_amount"].kind == "integer"
    assert fields["rewards[1].cost_points"].value == "200"
    assert fields["expiry.mode"].kind == "text"
    assert not [p for p in fields if p.startswith(("products", "actions", "earning_base"))]


def test_the_tiers_form_offers_thresholds_and_multipliers_but_not_benefit_lists() -> None:
    fields = {f.path: f for f in forms.form_fields("tiers", TIERS)}
    assert fields["tiers[2].enter.VND"].value == "15000000"
    assert fields["tiers[2].multiplier"].kind == "decimal"
    assert fields["window.days"].value == "365"
    assert not [p for p in fields if "benefits" in p]
    assert forms.form_fields("messages", "[brand]\nx = 1\n") == []
    assert forms.form_fields("earn", "not = [toml") == []


def test_one_changed_value_is_one_changed_line_and_the_comment_stays() -> None:
    form = {f.path: f.value for f in forms.form_fields("earn", EARN)}
    after = forms.apply_form("earn", EARN, form | {"currencies.VND.per_amount": "5000"})
    assert changed_lines(EARN, after) == [
        "-per_amount = 10000          # 1 point per 10,000 ₫ of the base",
        "+per_amount = 5000          # 1 point per 10,000 ₫ of the base",
    ]
    assert forms.apply_form("earn", EARN, form) == EARN


def test_a_threshold_in_an_inline_table_keeps_its_type() -> None:
    after = forms.apply_form("tiers", TIERS, {"tiers[2].enter.VND": "16000000"})
    assert changed_lines(TIERS, after) == [
        '-enter = { VND = "15000000" }',
        '+enter = { VND = "16000000" }',
    ]


def test_a_value_of_the_wrong_kind_is_refused_beside_its_field_and_unknown_paths_ignored() -> None:
    with pytest.raises(forms.FormRefused) as refused:
        forms.apply_form(
            "earn",
            EARN,
            {"currencies.VND.points": "two", "products[0].multiplier": "9", "x.y": "1"},
        )
    assert [(e.path, e.message) for e in refused.value.errors] == [
        ("currencies.VND.points", "a whole number is needed")
    ]
    with pytest.raises(forms.FormRefused):
        forms.apply_form("tiers", TIERS, {"tiers[1].multiplier": "NaN"})


@pytest.mark.parametrize(
    ("kind", "location", "field"),
    [
        ("earn", "earn.currencies.VND.per_amount", "currencies.VND.per_amount"),
        ("tiers", "tiers.tiers[2].multiplier", "tiers[2].multiplier"),
        ("earn", "earn", ""),
        ("earn", "effective_from", "effective_from"),
    ],
)
def test_an_api_error_location_names_the_field(kind: str, location: str, field: str) -> None:
    assert forms.field_of(kind, location) == field
