"""Programme documents of the shops service: the templates pass their validators, and a
problem is named by kind and setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.shops.documents import KINDS, check_document, check_earns_in
from services.shops.handlers import templates
from services.shops.refusals import InvalidDocument

TEMPLATES = Path(__file__).parents[2] / "services" / "shops" / "templates"


@pytest.mark.parametrize("template", ["vn-fashion", "us-shop"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_template_document_is_valid(template: str, kind: str) -> None:
    assert check_document(kind, (TEMPLATES / template / f"{kind}.toml").read_text()) is not None


def test_the_templates_are_the_two_starters() -> None:
    assert templates() == ["us-shop", "vn-fashion"]


def test_messages_problems_name_the_setting() -> None:
    with pytest.raises(InvalidDocument) as refused:
        check_document(
            "messages",
            'sender_name = "A"\nsender_address = "a@b.example"\n'
            'storefront_url = "ftp://x"\nfrequency_cap = 0\n',
        )
    where = [at for at, _ in refused.value.problems]
    assert where == ["messages.storefront_url", "messages.frequency_cap"]


def test_a_messages_template_that_does_not_render_is_refused_naming_it() -> None:
    with pytest.raises(InvalidDocument) as refused:
        check_document("messages", '[templates.en.welcome]\ntxt = "{% block subject %}"\n')
    assert refused.value.problems[0][0] == "messages.templates.en.welcome"


def test_a_document_that_is_not_toml_or_of_no_kind_is_refused() -> None:
    with pytest.raises(InvalidDocument) as not_toml:
        check_document("earn", "this is = = not toml")
    assert "not valid TOML" in not_toml.value.problems[0][1]
    with pytest.raises(InvalidDocument):
        check_document("rewards", "a = 1")


def test_a_shop_joins_only_a_coalition_that_earns_in_its_currency() -> None:
    vnd = (TEMPLATES / "vn-fashion" / "earn.toml").read_text()
    check_earns_in(vnd, "VND", coalition_id="c")
    with pytest.raises(InvalidDocument) as refused:
        check_earns_in(vnd, "USD", coalition_id="c")
    assert [at for at, _ in refused.value.problems] == ["coalition_id"]
    assert "currencies.USD" in refused.value.problems[0][1]
