"""Notify's templates' routes: every template listed, previewed in vi and en with sample data,
with the settings in effect or a draft of the shop's messages document, which is refused as
the shops API refuses it, naming the setting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from html.parser import HTMLParser

import httpx
import pytest
from faststream.asgi import AsgiFastStream
from notify_support import NOTIFY_API_KEY
from support import unique

from services.notify.domain.messages import TEMPLATES
from shared.runtime import Runtime

DRAFT = '''
sender_name = "Lotus Tea"
sender_address = "hello@lotus.example"
storefront_url = "https://lotus.example"
default_currency = "USD"

[templates.en.welcome]
txt = """
{% block subject %}A cup of Lotus for you, {{ name }}{% endblock %}
{% block body %}Your balance: {{ number(balance) }} points.{% endblock %}
{% block push_title %}Lotus Tea{% endblock %}
{% block push_body %}Welcome{% endblock %}
"""
'''


@pytest.fixture(scope="module")
async def api(notify: tuple[AsgiFastStream, Runtime]) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=notify[0])
    headers = {"X-API-Key": NOTIFY_API_KEY, "X-Shop-Id": unique("shop")}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://notify", headers=headers
    ) as client:
        yield client


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.tags.append(tag)


async def test_every_template_is_listed_with_its_triggers_and_languages(
    api: httpx.AsyncClient,
) -> None:
    listed = await api.get("/v1/templates")

    assert listed.status_code == 200, listed.text
    items = {t["name"]: t for t in listed.json()["items"]}
    assert set(items) == set(TEMPLATES)
    assert items["cart_reminder"]["triggers"] == ["cart.abandoned"]
    assert items["cart_reminder"]["category"] == "marketing"
    assert items["welcome"]["languages"] == ["en", "vi"]


async def test_a_template_is_previewed_in_vietnamese_and_english_with_sample_data(
    api: httpx.AsyncClient,
) -> None:
    vi = await api.post("/v1/templates/cart_reminder/preview", json={"locale": "vi-VN"})
    en = await api.post("/v1/templates/cart_reminder/preview", json={"locale": "en-US"})

    assert (vi.status_code, en.status_code) == (200, 200), vi.text
    assert (vi.json()["language"], en.json()["language"]) == ("vi", "en")
    assert "Bộ ấm trà Bát Tràng" in vi.json()["html"]
    assert "1.234.567" in vi.json()["text"]  # the sample's money in the locale's format
    assert vi.json()["subject"] != en.json()["subject"]
    parser = _Tags()
    parser.feed(en.json()["html"])
    assert "html" in parser.tags


async def test_a_draft_is_previewed_with_its_own_template_and_currency(
    api: httpx.AsyncClient,
) -> None:
    shipped = await api.post("/v1/templates/welcome/preview", json={"locale": "en"})
    drafted = await api.post(
        "/v1/templates/welcome/preview", json={"locale": "en", "messages_toml": DRAFT}
    )

    assert drafted.status_code == 200, drafted.text
    assert drafted.json()["subject"] == "A cup of Lotus for you, Nguyễn Văn An"
    assert drafted.json()["text"] == "Your balance: 2,450 points."
    assert shipped.json()["subject"] != drafted.json()["subject"]


async def test_a_draft_the_shops_api_would_refuse_is_a_422_naming_each_setting(
    api: httpx.AsyncClient,
) -> None:
    broken = DRAFT.replace('default_currency = "USD"', "frequency_cap = 0").replace(
        "{{ name }}", "{{ nickname }}"
    )

    refused = await api.post(
        "/v1/templates/welcome/preview", json={"locale": "en", "messages_toml": broken}
    )
    not_toml = await api.post(
        "/v1/templates/welcome/preview", json={"locale": "en", "messages_toml": "a = ["}
    )
    unknown = await api.post("/v1/templates/no_such/preview", json={"locale": "en"})

    assert refused.status_code == 422
    assert [e["location"] for e in refused.json()["errors"]] == ["messages.frequency_cap"]
    assert not_toml.status_code == 422
    assert [e["location"] for e in not_toml.json()["errors"]] == ["messages"]
    assert unknown.status_code == 404


async def test_a_draft_is_previewed_with_its_brand_and_one_unreadable_is_refused(
    api: httpx.AsyncClient,
) -> None:
    brand = (
        DRAFT
        + """
[brand]
logo_url = "https://lotus.example/logo.png"
primary_colour = "#0B6E4F"
"""
    )
    unreadable = brand.replace('"#0B6E4F"', '"#EEEEEE"')

    shown = await api.post(
        "/v1/templates/cart_reminder/preview", json={"locale": "en", "messages_toml": brand}
    )
    refused = await api.post(
        "/v1/templates/cart_reminder/preview", json={"locale": "en", "messages_toml": unreadable}
    )

    assert shown.status_code == 200, shown.text
    assert '<img src="https://lotus.example/logo.png" alt="Lotus Tea"' in shown.json()["html"]
    assert '<td bgcolor="#0B6E4F"' in shown.json()["html"]
    assert refused.status_code == 422
    assert [e["location"] for e in refused.json()["errors"]] == ["messages.brand.on_primary_colour"]
