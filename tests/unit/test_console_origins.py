"""Origins a shop allows for its widget: written as a browser writes its Origin header."""

from __future__ import annotations

import pytest

from services.console.domain.origins import OriginRefused, parse_origin


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://Shop.Example", "https://shop.example"),
        ("https://shop.example/", "https://shop.example"),
        ("https://shop.example:443", "https://shop.example"),
        ("http://127.0.0.1:8010", "http://127.0.0.1:8010"),
        (" https://shop.example:8443 ", "https://shop.example:8443"),
        ("http://[::1]:8010", "http://[::1]:8010"),
    ],
)
def test_an_origin_is_kept_as_browsers_send_it(given: str, origin: str) -> None:
    assert parse_origin(given) == origin


@pytest.mark.parametrize(
    "given",
    [
        "https://*.shop.example",
        "https://shop.example/cart",
        "ftp://shop.example",
        "shop.example",
        "https://user@shop.example",
        "https://shop.example?x=1",
        "https://shop.example:99999",
        "*",
    ],
)
def test_anything_but_an_exact_origin_is_refused(given: str) -> None:
    with pytest.raises(OriginRefused):
        parse_origin(given)
