"""A shop's brand in its emails: the WCAG contrast of its colours, the [brand] section of its
messages document, and the branded layout in vi and en."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from pydantic import SecretStr

from services.notify.bootstrap import make_shop_messages
from services.notify.domain.brand import MIN_CONTRAST, ON_PRIMARY, PRIMARY, contrast_ratio
from services.notify.domain.messages import TEMPLATES
from services.notify.preview import sample_values
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ALWAYS, ShopMessageSettings
from services.shops.documents import check_document
from services.shops.refusals import InvalidDocument
from shared.programme_files import ProgrammeError


@pytest.mark.parametrize(
    ("first", "second", "ratio"),
    [
        ("#000000", "#FFFFFF", 21.0),
        ("#FFFFFF", "#FFFFFF", 1.0),
        ("#777777", "#FFFFFF", 4.48),  # just below AA for normal text
        ("#0000FF", "#FFFFFF", 8.59),
    ],
)
def test_the_contrast_ratio_is_the_wcag_one_whichever_colour_comes_first(
    first: str, second: str, ratio: float
) -> None:
    assert round(contrast_ratio(first, second), 2) == ratio
    assert contrast_ratio(second, first) == contrast_ratio(first, second)


def test_the_neutral_button_is_readable() -> None:
    assert contrast_ratio(ON_PRIMARY, PRIMARY) >= MIN_CONTRAST


# --- the [brand] section of a shop's messages document, and the branded layout ---

BRANDED = """
sender_name = "Gốm Sen"
sender_address = "xin-chao@gomsen.example"
storefront_url = "https://gomsen.example"

[brand]
logo_url = "https://gomsen.example/logo.png"
primary_colour = "#8B1E3F"
on_primary_colour = "#FFFFFF"
text_colour = "#1A1A1A"
"""

VOID = frozenset({"meta", "img", "br", "hr", "input", "link"})


class _Checker(HTMLParser):
    """Fails on an end tag that closes no open element, and on one left open."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs))
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open)
        self.open.pop()


def with_brand_setting(setting: str) -> str:
    """BRANDED with `setting` in place of the line of the same name (or added to [brand])."""
    name = setting.split(" = ", maxsplit=1)[0]
    lines = BRANDED.splitlines()
    if not any(line.startswith(f"{name} = ") for line in lines):
        return BRANDED.replace("[brand]\n", f"[brand]\n{setting}\n")
    return "\n".join(setting if line.startswith(f"{name} = ") else line for line in lines)


def settings() -> ShopMessageSettings:
    return make_shop_messages(NotifySettings(unsubscribe_secret=SecretStr("s" * 40)))


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("language", ["vi", "en"])
def test_every_message_is_branded_valid_html_with_a_readable_text_part(
    template: str, language: str
) -> None:
    shops = settings()
    shops.put_toml("sen", BRANDED)
    rendered = shops.renderer_for("sen", ALWAYS).render(template, language, sample_values(template))
    checker = _Checker()

    checker.feed(rendered.html)
    checker.close()

    assert checker.open == []
    assert checker.images[0] == {
        "src": "https://gomsen.example/logo.png",
        "alt": "Gốm Sen",
        "height": "48",
        "style": "display: block; height: 48px; border: 0;",
    }
    assert "2.450" in rendered.html if language == "vi" else "2,450" in rendered.html
    assert "color: #1A1A1A" in rendered.html
    assert "<" not in rendered.text and "{" not in rendered.text
    assert rendered.text.strip()


def test_the_main_call_to_action_is_a_table_button_in_the_brands_colours() -> None:
    shops = settings()
    shops.put_toml("sen", BRANDED)
    html = shops.renderer_for("sen", ALWAYS).render("welcome", "en", sample_values("welcome")).html

    assert '<td bgcolor="#8B1E3F"' in html
    assert 'color: #FFFFFF; text-decoration: none; border-radius: 6px;">Start shopping</a>' in html
    assert "Tier: <strong>Silver</strong> · Points: <strong>2,450</strong>" in html


def test_without_a_brand_the_layout_is_neutral_and_has_no_logo() -> None:
    html = (
        settings()
        .renderer_for("plain", ALWAYS)
        .render("welcome", "vi", sample_values("welcome"))
        .html
    )

    assert "<img" not in html
    assert f'<td bgcolor="{PRIMARY}"' in html


@pytest.mark.parametrize(
    ("section", "refused"),
    [
        (
            'on_primary_colour = "#9B3050"',
            "brand.on_primary_colour: its contrast with primary_colour",
        ),
        ('text_colour = "#AAAAAA"', "brand.text_colour: its contrast with the white page"),
        ('logo_url = "http://gomsen.example/logo.png"', "brand.logo_url: String should match"),
        ('primary_colour = "red"', "brand.primary_colour: String should match"),
        ('colour = "#000000"', "brand.colour: Extra inputs are not permitted"),
    ],
)
def test_a_brand_that_could_not_be_read_is_refused_naming_the_setting(
    section: str, refused: str
) -> None:
    document = with_brand_setting(section)

    with pytest.raises(ProgrammeError) as refusal:
        settings().put_toml("sen", document)

    assert refused in str(refusal.value)


def test_the_shops_api_refuses_a_brand_naming_the_setting_in_the_document() -> None:
    with pytest.raises(InvalidDocument) as refusal:
        check_document("messages", with_brand_setting('on_primary_colour = "#9B3050"'))

    assert [at for at, _ in refusal.value.problems] == ["messages.brand.on_primary_colour"]
