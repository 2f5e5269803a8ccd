"""Every word of the console's templates and code has its Vietnamese, with the same
placeholders; the pages render in both languages."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from starlette.requests import Request

from services.console import rendering

CONSOLE = Path(rendering.__file__).parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")
METHODS = [("**.py", "python"), ("templates/**.html", "jinja2")]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def msgids() -> set[str]:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(CONSOLE), METHODS, OPTIONS
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_the_templates_have_words_to_translate() -> None:
    assert {"Sign in", "Sign out", "Not found", "Skip to content"} <= msgids()


def test_every_msgid_has_a_vietnamese_translation_with_the_same_placeholders() -> None:
    with (CONSOLE / "locales" / "vi.po").open("rb") as po:
        catalog = read_po(po, locale="vi")
    for msgid in sorted(msgids()):
        message = catalog.get(msgid)
        assert message is not None, f"vi.po lacks {msgid!r}"
        assert message.string, f"vi.po leaves {msgid!r} untranslated"
        assert not message.fuzzy, f"vi.po's {msgid!r} is fuzzy"
        assert set(PLACEHOLDER.findall(str(message.string))) == set(PLACEHOLDER.findall(msgid))


def test_vi_po_holds_no_word_the_console_no_longer_uses() -> None:
    with (CONSOLE / "locales" / "vi.po").open("rb") as po:
        catalog = read_po(po, locale="vi")
    assert {m.id for m in catalog if m.id} == msgids()


def page_request(cookies: str = "") -> Request:
    headers = [(b"cookie", cookies.encode())] if cookies else []
    return Request({"type": "http", "method": "GET", "path": "/sign-in", "headers": headers})


def text_of(body: bytes | memoryview) -> str:
    return bytes(body).decode()


def test_a_page_is_in_vietnamese_unless_the_reader_chose_english() -> None:
    vi = text_of(rendering.render(page_request(), "error.html", {"status": 404}).body)
    en = text_of(
        rendering.render(
            page_request(f"{rendering.LANGUAGE_COOKIE}=en"), "error.html", {"status": 404}
        ).body
    )
    assert '<html lang="vi">' in vi
    assert "Không tìm thấy" in vi
    assert '<html lang="en">' in en
    assert "Not found" in en


def test_a_language_cookie_of_another_value_falls_back_to_vietnamese() -> None:
    page = text_of(
        rendering.render(
            page_request(f"{rendering.LANGUAGE_COOKIE}=fr"), "error.html", {"status": 404}
        ).body
    )
    assert '<html lang="vi">' in page


def test_what_a_page_is_given_is_escaped() -> None:
    page = rendering.render(page_request(), "home.html", {"shop_id": "<script>x</script>"})
    assert b"<script>x</script>" not in page.body
    assert b"&lt;script&gt;x&lt;/script&gt;" in page.body
