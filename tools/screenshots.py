"""The README's pictures of the console and the widget, taken from a running `make run`.

    make screenshots RUN_LOG=.local/run.log      # `make run | tee .local/run.log` beforehand
    make screenshots PASSWORD=<the printed one>
    .venv/bin/python -m tools.screenshots [--run-log FILE] [--password P] [--console URL]
                                          [--storefront URL] [--shop vn-fashion] [--only NAME]

Signs in to the console with the demo account `make run` prints (its address, account and
password are read from the saved output, or given), and captures docs/images/console-home.png,
console-customer.png and console-programme.png at 1280x800, and widget-phone.png (the member
widget on the demo storefront) at 390x844, with Playwright driving Debian's chromium (no browser
is downloaded). The customer shown is the storefront's (the demo's first simulated customer).
A page that does not answer 200 is not captured: the command names it and exits with 1.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Browser, Page, ViewportSize, async_playwright

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 390, "height": 844}
DEMO_ACCOUNT = "demo@loyalty.example"
# What `loyalty demo` prints (services/demo.py, _announce).
CONSOLE_LINE = re.compile(r"^Console\s+(https?://\S+?)/sign-in\s+(\S+@\S+) / (\S+)", re.MULTILINE)
STOREFRONT_LINE = re.compile(r"^Storefront\s+(https?://[^/\s]+)/", re.MULTILINE)
# The storefront page names its customer in a paragraph before the widget.
STOREFRONT_CUSTOMER = re.compile(r"<p>([^<]+)</p>\s*<loyalty-widget")


@dataclass(frozen=True)
class Demo:
    console: str
    storefront: str
    email: str
    password: str


class NotCaptured(Exception):
    """A page answered something else than 200: a picture of it would show an error."""


def demo_from_output(text: str) -> Demo:
    """The console's address, the account and its password, and the storefront's address, as
    `loyalty demo` printed them."""
    console, storefront = CONSOLE_LINE.search(text), STOREFRONT_LINE.search(text)
    if console is None or storefront is None:
        raise ValueError("no 'Console ... / <password>' and 'Storefront' lines of `make run`")
    return Demo(console[1], storefront[1], console[2], console[3])


def demo_from(args: argparse.Namespace) -> Demo:
    printed = demo_from_output(Path(args.run_log).read_text()) if args.run_log else None
    password = args.password or (printed.password if printed else None)
    if password is None:
        raise SystemExit("give --password, or --run-log with the output of `make run`")
    return Demo(
        args.console or (printed.console if printed else "http://127.0.0.1:8006"),
        args.storefront or (printed.storefront if printed else "http://127.0.0.1:8010"),
        printed.email if printed else DEMO_ACCOUNT,
        password,
    )


async def visit(page: Page, url: str) -> None:
    answer = await page.goto(url, wait_until="networkidle")
    if answer is None or answer.status != 200:
        raise NotCaptured(f"{url} answered {answer.status if answer else 'nothing'}")


async def sign_in(page: Page, demo: Demo) -> None:
    await visit(page, f"{demo.console}/sign-in")
    await page.fill("#email", demo.email)
    await page.fill("#password", demo.password)
    async with page.expect_navigation():
        await page.click('form[action="/sign-in"] button[type=submit]')
    if "/sign-in" in page.url:
        raise NotCaptured("the console refused the account: is the password this run's?")


async def storefront_customer(page: Page, demo: Demo, shop: str) -> str:
    await visit(page, f"{demo.storefront}/{shop}")
    found = STOREFRONT_CUSTOMER.search(await page.content())
    if found is None:
        raise NotCaptured(f"{demo.storefront}/{shop} names no customer")
    return found[1]


async def console_pages(browser: Browser, demo: Demo, shop: str, wanted: set[str]) -> list[str]:
    """The console's pictures; the names of those not captured."""
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await sign_in(page, demo)
    base = f"{demo.console}/shops/{shop}"

    async def customer_url() -> str:
        return f"{base}/customers/{await storefront_customer(page, demo, shop)}"

    async def fixed(path: str) -> str:
        return f"{base}{path}"

    shots: dict[str, Callable[[], Awaitable[str]]] = {
        "console-home": lambda: fixed("/"),
        "console-customer": customer_url,
        "console-programme": lambda: fixed("/programme/earn"),
    }
    missed = []
    for name, url in shots.items():
        if name in wanted:
            try:
                await capture(page, await url(), name)
            except NotCaptured as refused:
                print(f"{name}: not captured: {refused}", file=sys.stderr)
                missed.append(name)
    await context.close()
    return missed


async def widget_phone(browser: Browser, demo: Demo, shop: str) -> None:
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    try:
        await visit(page, f"{demo.storefront}/{shop}")
        # The element has drawn the signed-in panel once the balance is there.
        await page.locator("loyalty-widget #balance").wait_for(timeout=15_000)
        await save(page, "widget-phone")
    finally:
        await context.close()


async def capture(page: Page, url: str, name: str) -> None:
    await visit(page, url)
    await save(page, name)


async def save(page: Page, name: str) -> None:
    path = IMAGES / f"{name}.png"
    await page.screenshot(path=path)
    print(f"{name}: {path}")


async def main(args: argparse.Namespace) -> int:
    demo = demo_from(args)
    binary = shutil.which("chromium")
    if binary is None:
        raise SystemExit("chromium is missing: run deploy/local/ops-tools.sh chromium")
    IMAGES.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or NAMES)
    missed: list[str] = []
    async with async_playwright() as playwright:
        # Debian's chromium: Playwright adds --no-sandbox itself when it runs as root.
        browser = await playwright.chromium.launch(executable_path=binary, headless=True)
        try:
            missed += await console_pages(browser, demo, args.shop, wanted)
            if "widget-phone" in wanted:
                try:
                    await widget_phone(browser, demo, args.shop)
                except NotCaptured as refused:
                    print(f"widget-phone: not captured: {refused}", file=sys.stderr)
                    missed.append("widget-phone")
        finally:
            await browser.close()
    return 1 if missed else 0


NAMES = ("console-home", "console-customer", "console-programme", "widget-phone")


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run-log", help="the saved output of `make run`")
    parser.add_argument("--password", help="the demo account's password, as printed")
    parser.add_argument("--console", help="the console's address (default: as printed, or :8006)")
    parser.add_argument("--storefront", help="the storefront's (default: as printed, or :8010)")
    parser.add_argument("--shop", default="vn-fashion")
    parser.add_argument("--only", action="append", choices=NAMES, help="this picture (repeatable)")
    sys.exit(asyncio.run(main(parser.parse_args())))


if __name__ == "__main__":
    cli()
