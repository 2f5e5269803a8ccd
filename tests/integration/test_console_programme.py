"""The programme pages against the real shops service: versions per kind, a change made in the
form published as a one-line change with who and why, errors beside the field they name, the
earn preview of a sample order, rollback with a reason, and who may do it."""

from __future__ import annotations

import difflib
import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from console_support import ShopsStack, console_with_shops, csrf_of, signed_in
from infrastructure import Endpoints
from support import unique

from services.console.adapters.accounts import User
from services.console.domain.roles import Role

VERSIONS = "/v1/shops/{}/programmes/{}/versions"


@pytest.fixture(scope="module")
async def stack(infrastructure: Endpoints) -> AsyncIterator[ShopsStack]:
    async with console_with_shops(infrastructure) as stack:
        yield stack


async def new_shop(stack: ShopsStack) -> str:
    """A new shop; the console's clock then stands where its first versions (which start after
    the shops service's lead) are in force."""
    shop = unique("vn")
    await stack.shops.new_shop(shop, "vn-fashion")
    first = (await versions(stack, shop, "earn"))[0]["effective_from"]
    stack.console.clock.set(datetime.fromisoformat(first))
    return shop


async def versions(stack: ShopsStack, shop: str, kind: str = "earn") -> list[dict[str, str]]:
    listed = await stack.shops.api.get(VERSIONS.format(shop, kind), headers=stack.shops.platform)
    return list(listed.json())


def form_of(html: str) -> dict[str, str]:
    """The main settings form's inputs as a browser would send them."""
    start = html.index('name="source" value="form"')
    form = html[start : html.index("</form>", start)]
    fields = dict(re.findall(r'<input id="f-[^"]*" name="([^"]+)" value="([^"]*)"', form))
    fields |= dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    return fields | {"csrf_token": csrf_of(html), "source": "form"}


async def editor(stack: ShopsStack, shop: str, role: Role = Role.MARKETER) -> tuple[User, str]:
    return await stack.console.make_user({shop: role}, locale="en"), shop


@pytest.mark.parametrize(
    ("language", "words"), [("en", "Version 1, since"), ("vi", "Phiên bản 1, từ")]
)
async def test_the_programme_page_lists_each_kinds_version_in_force(
    stack: ShopsStack, language: str, words: str
) -> None:
    shop = await new_shop(stack)
    user = await stack.console.make_user({shop: Role.READ_ONLY}, locale=language)
    async with stack.console.client() as client:
        await signed_in(client, user)
        overview = await client.get(f"/shops/{shop}/programme")
        earn = await client.get(f"/shops/{shop}/programme/earn")
        one = await client.get(f"/shops/{shop}/programme/tiers/versions/1")
        missing = await client.get(f"/shops/{shop}/programme/tiers/versions/9")
    assert overview.status_code == 200
    assert f'<html lang="{language}">' in overview.text
    assert overview.text.count(words) == 3  # each kind's version 1 is in force
    assert overview.text.count(f'href="/shops/{shop}/programme/') == 3
    assert earn.status_code == 200
    assert "template vn-fashion" in earn.text
    assert 'name="csrf_token"' not in earn.text.split("</header>")[1]  # no forms for read-only
    assert "per_amount = 10000" in earn.text
    assert one.status_code == 200
    assert "Vàng" in one.text
    # Like every page reading another service: how long it waited, for the benchmark.
    assert one.headers["server-timing"].startswith("shops;dur=")
    assert missing.status_code == 404


async def test_a_marketer_changes_the_rate_in_the_form_and_publishes_it_with_a_reason(
    stack: ShopsStack,
) -> None:
    user, shop = await editor(stack, await new_shop(stack))
    async with stack.console.client() as client:
        await signed_in(client, user)
        page = await client.get(f"/shops/{shop}/programme/earn")
        form = form_of(page.text) | {
            "currencies.VND.per_amount": "5000",
            "intent": "publish",
            "reason": "double points in December",
        }
        published = await client.post(f"/shops/{shop}/programme/earn", data=form)
        after = await client.get(published.headers["location"])
    listed = await versions(stack, shop)
    changed = [
        line
        for line in difflib.unified_diff(
            listed[0]["toml"].splitlines(), listed[1]["toml"].splitlines(), lineterm=""
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert published.status_code == 303, published.text
    assert published.headers["location"] == f"/shops/{shop}/programme/earn?published=2"
    assert changed == [
        "-per_amount = 10000          # 1 point per 10,000 ₫ of the base",
        "+per_amount = 5000          # 1 point per 10,000 ₫ of the base",
    ]
    assert listed[1]["reason"] == "double points in December"
    assert listed[1]["published_by"].endswith(f" for console:{user.user_id}")
    assert re.search(
        r'<label for="f-currencies-VND-per_amount">Amount per step \(VND\) <code', page.text
    )
    assert "Spend to enter" not in page.text  # a tiers setting, not on the earn page
    assert "Version 2 is published." in after.text
    assert "double points in December" in after.text
    assert f'{user.name} <code class="path">{listed[1]["published_by"]}</code>' in after.text
    assert "scheduled" in after.text  # the shops service's lead: it starts in 30 s


async def test_a_version_published_from_a_time_on_the_shops_clock_starts_then(
    stack: ShopsStack,
) -> None:
    user, shop = await editor(stack, await new_shop(stack))
    local = stack.console.clock.now().astimezone(ZoneInfo("Asia/Ho_Chi_Minh")) + timedelta(days=2)
    starts = local.replace(second=0, microsecond=0)
    async with stack.console.client() as client:
        await signed_in(client, user)
        page = await client.get(f"/shops/{shop}/programme/tiers")
        form = form_of(page.text) | {
            "window.days": "180",
            "intent": "publish",
            "reason": "a shorter window from the new season",
            "effective_from": starts.strftime("%Y-%m-%dT%H:%M"),
        }
        published = await client.post(f"/shops/{shop}/programme/tiers", data=form)
    listed = await versions(stack, shop, "tiers")
    ids = re.findall(r' id="([^"]+)"', page.text)
    assert published.status_code == 303, published.text
    assert datetime.fromisoformat(listed[1]["effective_from"]) == starts
    assert "days = 180" in listed[1]["toml"]
    assert len(ids) == len(set(ids))  # every label finds its one input


async def test_a_wrong_value_is_shown_beside_its_field_and_nothing_is_published(
    stack: ShopsStack,
) -> None:
    user, shop = await editor(stack, await new_shop(stack))
    async with stack.console.client() as client:
        await signed_in(client, user)
        form = form_of((await client.get(f"/shops/{shop}/programme/earn")).text)
        refused = await client.post(
            f"/shops/{shop}/programme/earn",
            data=form | {"currencies.VND.per_amount": "-5", "intent": "publish", "reason": "x"},
        )
        not_a_number = await client.post(
            f"/shops/{shop}/programme/earn",
            data=form | {"rewards[0].cost_points": "many", "intent": "validate"},
        )
    field = 'id="f-currencies-VND-per_amount"'
    assert refused.status_code == 422
    assert 'aria-describedby="f-currencies-VND-per_amount-error"' in refused.text
    assert re.search(rf'{field}[^>]*aria-invalid="true"', refused.text)
    assert re.search(r'id="f-currencies-VND-per_amount-error">[^<]*greater than 0', refused.text)
    assert not_a_number.status_code == 422
    assert 'id="f-rewards-0-cost_points-error">a whole number is needed' in not_a_number.text
    assert re.search(
        r'id="f-rewards-0-cost_points" [^>]*value="many"[^>]* autofocus', not_a_number.text
    )
    assert len(await versions(stack, shop)) == 1


async def test_the_consoles_own_refusals_are_in_the_readers_language(stack: ShopsStack) -> None:
    shop = await new_shop(stack)
    user = await stack.console.make_user({shop: Role.MARKETER}, locale="vi")
    async with stack.console.client() as client:
        await signed_in(client, user)
        form = form_of((await client.get(f"/shops/{shop}/programme/earn")).text)
        refused = await client.post(
            f"/shops/{shop}/programme/earn",
            data=form | {"currencies.VND.points": "hai", "intent": "publish", "reason": ""},
        )
        no_reason = await client.post(
            f"/shops/{shop}/programme/earn", data=form | {"intent": "publish", "reason": " "}
        )
    assert refused.status_code == 422
    assert 'id="f-currencies-VND-points-error">cần một số nguyên' in refused.text
    assert "Số điểm cho mỗi bậc (VND)" in refused.text
    assert no_reason.status_code == 422
    assert 'id="form-reason-error">cần một lý do' in no_reason.text
    assert len(await versions(stack, shop)) == 1


async def test_a_draft_begun_before_another_publication_is_not_published_over_it(
    stack: ShopsStack,
) -> None:
    user, shop = await editor(stack, await new_shop(stack))
    async with stack.console.client() as client:
        await signed_in(client, user)
        form = form_of((await client.get(f"/shops/{shop}/programme/earn")).text)
        first = await client.post(
            f"/shops/{shop}/programme/earn",
            data=form | {"currencies.VND.points": "2", "intent": "publish", "reason": "one"},
        )
        second = await client.post(
            f"/shops/{shop}/programme/earn",
            data=form | {"expiry.months": "6", "intent": "publish", "reason": "two"},
        )
    assert first.status_code == 303
    assert second.status_code == 422
    assert "Version 2 was published after this draft was begun" in second.text
    assert [v["reason"] for v in await versions(stack, shop)] == ["template vn-fashion", "one"]


async def test_the_toml_editor_reports_a_broken_document_above_the_editor(
    stack: ShopsStack,
) -> None:
    user, shop = await editor(stack, await new_shop(stack))
    async with stack.console.client() as client:
        await signed_in(client, user)
        token = csrf_of((await client.get(f"/shops/{shop}/programme/tiers")).text)
        broken = await client.post(
            f"/shops/{shop}/programme/tiers",
            data={"csrf_token": token, "source": "toml", "toml": "basis = [", "intent": "validate"},
        )
    assert broken.status_code == 422
    assert 'role="alert" id="problems"' in broken.text
    assert "not valid TOML" in broken.text
    assert "basis = [</textarea>" in broken.text


async def test_the_preview_tells_what_a_sample_order_would_earn_under_the_draft(
    stack: ShopsStack,
) -> None:
    user, shop = await editor(stack, await new_shop(stack))
    async with stack.console.client() as client:
        await signed_in(client, user)
        form = form_of((await client.get(f"/shops/{shop}/programme/earn")).text)
        preview = await client.post(
            f"/shops/{shop}/programme/earn",
            data=form
            | {
                "currencies.VND.per_amount": "5000",
                "intent": "preview",
                "sample_amount": "1250000",
                "sample_currency": "VND",
                "sample_category": "bo-suu-tap-moi",
            },
        )
    assert preview.status_code == 200, preview.text
    # 1,250,000 ₫ in the new collection (x2) at 1 point per 5,000 ₫: 500 points.
    assert re.search(r"<dt>Points</dt><dd>500</dd>", preview.text)
    assert "1.250.000" in preview.text  # the shop's locale writes the money
    assert len(await versions(stack, shop)) == 1


async def test_a_rollback_publishes_the_old_document_with_the_reason_given(
    stack: ShopsStack,
) -> None:
    user, shop = await editor(stack, await new_shop(stack), Role.OWNER)
    async with stack.console.client() as client:
        await signed_in(client, user)
        form = form_of((await client.get(f"/shops/{shop}/programme/earn")).text)
        await client.post(
            f"/shops/{shop}/programme/earn",
            data=form | {"currencies.VND.points": "2", "intent": "publish", "reason": "more"},
        )
        shown = await client.get(f"/shops/{shop}/programme/earn/versions/1")
        second = await client.get(f"/shops/{shop}/programme/earn/versions/2")
        back = await client.post(
            f"/shops/{shop}/programme/earn/rollback",
            data={"csrf_token": csrf_of(shown.text), "version": "1", "reason": "too generous"},
        )
    listed = await versions(stack, shop)
    assert "Roll back to this version" in shown.text
    assert "Changes from" not in shown.text  # version 1 has none before it
    assert "Changes from version 1" in second.text
    assert "-points = 1\n+points = 2" in second.text
    assert back.status_code == 303
    assert [v["version"] for v in listed] == [1, 2, 3]
    assert listed[2]["toml"] == listed[0]["toml"]
    assert listed[2]["reason"] == "too generous"


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.READ_ONLY])
async def test_support_and_read_only_staff_may_not_publish_or_roll_back(
    stack: ShopsStack, role: Role
) -> None:
    shop = await new_shop(stack)
    user = await stack.console.make_user({shop: role}, locale="en")
    async with stack.console.client() as client:
        await signed_in(client, user)
        page = await client.get(f"/shops/{shop}/programme/earn")
        token = csrf_of(page.text)
        publish = await client.post(
            f"/shops/{shop}/programme/earn",
            data={"csrf_token": token, "source": "toml", "toml": "x", "intent": "publish"},
        )
        rollback = await client.post(
            f"/shops/{shop}/programme/earn/rollback",
            data={"csrf_token": token, "version": "1", "reason": "r"},
        )
    assert page.status_code == 200
    assert 'value="publish"' not in page.text
    assert (publish.status_code, rollback.status_code) == (403, 403)
    assert len(await versions(stack, shop)) == 1


async def test_a_programme_page_says_so_when_the_shops_service_has_no_answer(
    stack: ShopsStack,
) -> None:
    # A shop the shops service does not know: each kind's panel says so, the page answers.
    shop = unique("gone")
    user = await stack.console.make_user({shop: Role.OWNER}, locale="en")
    async with stack.console.client() as client:
        await signed_in(client, user)
        page = await client.get(f"/shops/{shop}/programme")
    assert page.status_code == 200
    assert page.text.count("The shops service is unavailable.") == 3
