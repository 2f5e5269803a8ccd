"""The widget's script: small, self-contained, and free of what a strict storefront CSP forbids."""

from __future__ import annotations

import re
from pathlib import Path

import services.console

SCRIPT = Path(services.console.__file__).parent / "static/widget/loyalty-widget.js"


def test_the_script_stays_under_50_kb() -> None:
    assert SCRIPT.stat().st_size < 50_000


def test_the_script_builds_no_markup_from_strings_and_evaluates_no_code() -> None:
    text = SCRIPT.read_text()
    for forbidden in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setTimeout("',
        "style=",
    ):
        assert forbidden not in text, forbidden


def test_the_script_names_no_other_server() -> None:
    # Its API is found from its own URL, so the same file works on any deployment.
    assert not re.search(r"https?://", SCRIPT.read_text())
    assert 'new URL("./", import.meta.url)' in SCRIPT.read_text()


def test_the_progress_line_speaks_vietnamese_and_english() -> None:
    text = SCRIPT.read_text()
    assert "`còn ${money} để lên hạng ${tier}`" in text
    assert "`${money} more to reach ${tier}`" in text
