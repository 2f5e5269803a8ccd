"""Headless Chromium for the tests: open a page and screenshot it, or drive it with Playwright."""

from __future__ import annotations

import contextlib
import re
import shutil
import struct
import subprocess
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright

# Installed by `make axe-core` (tools/axe); injected into the page under test, never served.
AXE = Path(__file__).resolve().parent.parent / "tools/axe/node_modules/axe-core/axe.min.js"

CONSOLE = re.compile(r":CONSOLE(?::\d+)?\] (.*)")


@dataclass(frozen=True)
class Opened:
    console: list[str]  # every console message, error or not, and failed loads
    screenshot: Path


def open_headless(page: Path, screenshot: Path, *, size: str = "1400,2400") -> Opened:
    """Load a local page in headless Chromium (installed by deploy/local/ops-tools.sh)."""
    binary = shutil.which("chromium")
    assert binary, "chromium is missing: run deploy/local/ops-tools.sh chromium"
    result = subprocess.run(
        [
            binary,
            "--headless=new",
            "--no-sandbox",  # the tests may run as root
            "--disable-gpu",
            "--force-color-profile=srgb",  # colours in the screenshot as the page gives them
            "--hide-scrollbars",
            f"--window-size={size}",
            "--enable-logging=stderr",
            "--v=0",
            f"--screenshot={screenshot}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert screenshot.exists(), result.stderr[-2000:]
    return Opened([m.group(1) for m in CONSOLE.finditer(result.stderr)], screenshot)


def png_colours(path: Path) -> dict[tuple[int, int, int], int]:
    """Pixel count per RGB colour of an 8-bit RGB or RGBA, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, header = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour_type in (2, 6) and interlace == 0, "unsupported PNG layout"
    channels = 4 if colour_type == 6 else 3
    raw, stride = zlib.decompress(b"".join(chunks)), width * channels
    counts: dict[tuple[int, int, int], int] = {}
    previous = bytearray(stride)
    for row in range(height):
        start = row * (stride + 1)
        line = _unfilter(
            raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels
        )
        for x in range(0, stride, channels):
            rgb = (line[x], line[x + 1], line[x + 2])
            counts[rgb] = counts.get(rgb, 0) + 1
        previous = line
    return counts


def _unfilter(kind: int, line: bytearray, above: bytearray, bpp: int) -> bytearray:
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up, corner = above[i], above[i - bpp] if i >= bpp else 0
        if kind == 1:
            line[i] = (line[i] + left) & 0xFF
        elif kind == 2:
            line[i] = (line[i] + up) & 0xFF
        elif kind == 3:
            line[i] = (line[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            p = left + up - corner
            pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
            best = left if pa <= pb and pa <= pc else up if pb <= pc else corner
            line[i] = (line[i] + best) & 0xFF
    return line


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's chromium under Playwright: no browser is downloaded (never `playwright install`)."""
    binary = shutil.which("chromium")
    assert binary, "chromium is missing: run deploy/local/ops-tools.sh chromium"
    async with async_playwright() as playwright:
        # Playwright adds --no-sandbox itself when it runs as root.
        browser = await playwright.chromium.launch(executable_path=binary, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: list[str]


async def axe_check(
    page: Page, *, impacts: frozenset[str] = frozenset({"serious", "critical"})
) -> list[Violation]:
    """axe-core's violations on the page as it stands, of the given impacts (serious or worse)."""
    assert AXE.exists(), "axe-core is missing: run make axe-core"
    # Evaluated through the DevTools protocol, which the page's CSP does not govern (a script
    # tag would be refused by the console's `script-src 'self'`, as it should be).
    await page.evaluate(f"{{ {AXE.read_text()}\n}}; true")
    results: dict[str, Any] = await page.evaluate("() => axe.run(document)")
    return [
        Violation(
            rule=v["id"],
            impact=v["impact"],
            help=v["help"],
            targets=[str(node["target"]) for node in v["nodes"]],
        )
        for v in results["violations"]
        if v["impact"] in impacts
    ]
