"""Templates: both languages render every template; the sandbox is strict, escaped and capped."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.notify.domain.messages import TEMPLATES
from services.notify.preview import SAMPLES, write_preview
from services.notify.rendering import Renderer, TemplateProblem


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.mark.parametrize("locale", ["vi-VN", "en-US"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_in_both_languages(
    renderer: Renderer, template: str, locale: str, tmp_path: Path
) -> None:
    files = write_preview(renderer, template, locale, tmp_path)
    texts = {path.name.split(".", 2)[-1]: path.read_text() for path in files}
    assert "Nguyễn Văn An" in texts["subject.txt"] or template == "points_expiring"
    assert texts["html"].startswith("<!DOCTYPE html>")
    assert f'lang="{locale[:2]}"' in texts["html"]
    assert "unsubscribe" in texts["txt"].lower() or "Hủy đăng ký" in texts["txt"]


def test_money_is_formatted_for_the_customers_locale(renderer: Renderer) -> None:
    values = {**_common(), **SAMPLES["cart_reminder"]}
    vietnamese = renderer.render("cart_reminder", "vi-VN", values)
    english = renderer.render("cart_reminder", "en-US", values)
    assert "1.234.567\xa0₫" in vietnamese.text
    assert "₫1,234,567" in english.text


def test_unknown_locale_falls_back_to_the_default_language(renderer: Renderer) -> None:
    assert renderer.language_of("fr-FR") == "vi"
    assert renderer.language_of("en-GB") == "en"
    assert renderer.language_of(None) == "vi"


def _common() -> dict[str, object]:
    return {
        "name": "An <b>",
        "balance": 10,
        "tier_name": "Gold",
        "benefits": [],
        "base_url": "https://shop.example",
        "unsubscribe_url": "https://notify.example/unsubscribe?token=t",
        "currency": "VND",
    }


def _templates(tmp_path: Path, text: str, html: str = "<p>{{ name }}</p>") -> Renderer:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "t.txt").write_text(text)
    (tmp_path / "en" / "t.html").write_text(html)
    return Renderer(tmp_path, max_bytes=2048, default_locale="en")


BLOCKS = (
    "{% block subject %}Hi {{ name }}{% endblock %}{% block body %}{{ name }}{% endblock %}"
    "{% block push_title %}x{% endblock %}{% block push_body %}y{% endblock %}"
)


def test_html_is_autoescaped_and_text_is_not(tmp_path: Path) -> None:
    rendered = _templates(tmp_path, BLOCKS).render("t", "en", _common())
    assert rendered.html == "<p>An &lt;b&gt;</p>"
    assert rendered.text == "An <b>"


def test_an_unknown_variable_is_a_template_problem(tmp_path: Path) -> None:
    renderer = _templates(tmp_path, BLOCKS.replace("{{ name }}", "{{ nickname }}", 1))
    with pytest.raises(TemplateProblem, match="'nickname' is undefined"):
        renderer.render("t", "en", _common())


def test_output_beyond_the_cap_is_refused(tmp_path: Path) -> None:
    renderer = _templates(tmp_path, BLOCKS, html="{% for i in range(10000) %}xxxx{% endfor %}")
    with pytest.raises(TemplateProblem, match="exceeds"):
        renderer.render("t", "en", _common())


def test_the_sandbox_refuses_reaching_into_python(tmp_path: Path) -> None:
    renderer = _templates(tmp_path, BLOCKS, html="{{ name.__class__.__mro__ }}")
    with pytest.raises(TemplateProblem, match=r"SecurityError|undefined"):
        renderer.render("t", "en", _common())
