"""The console in headless Chromium as a person opens it: the sign-in page, its accessibility."""

from __future__ import annotations

from browser import axe_check, chromium
from playwright.async_api import ConsoleMessage, Page


async def focus_after_tabs(page: Page, selector: str, most: int = 20) -> int:
    """How many Tab presses, from the top of the page, bring the focus to the element."""
    for presses in range(1, most + 1):
        await page.keyboard.press("Tab")
        if await page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return presses
    raise AssertionError(f"{selector} is not reached by {most} Tab presses")


async def test_sign_in_page_has_no_serious_accessibility_violations_in_either_language(
    spawn: type,
) -> None:
    console = spawn("console").start()
    logged: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        logged.append(message.text)

    async with chromium() as browser:
        page = await browser.new_page()
        page.on("console", keep)
        answer = await page.goto(f"{console.url}/sign-in")
        assert answer is not None
        assert answer.status == 200
        assert await page.get_attribute("html", "lang") == "vi"
        assert await focus_after_tabs(page, "#email") <= 6
        assert await axe_check(page) == []

        await page.get_by_role("button", name="English").click()
        await page.wait_for_url(f"{console.url}/sign-in")
        assert await page.get_attribute("html", "lang") == "en"
        assert await page.get_by_role("heading", name="Sign in").is_visible()
        assert await axe_check(page) == []
    assert logged == []


async def test_axe_check_reports_what_a_careless_page_gets_wrong() -> None:
    careless = (
        '<!doctype html><html lang="en"><head><title>Careless</title></head><body><main>'
        '<p style="color:#bbb;background:#fff">Pale grey on white</p>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        "</main></body></html>"
    )
    async with chromium() as browser:
        page = await browser.new_page()
        await page.set_content(careless)
        found = {(v.rule, v.impact) for v in await axe_check(page)}
    assert found == {("color-contrast", "serious"), ("image-alt", "critical")}
