"""The messages pages: unavailable when notify has no templates API (404) or does not answer,
a test send to one's own address announced on loyalty.console, and who may send one."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from console_support import ShopsStack, console_with_shops, csrf_of, signed_in
from infrastructure import Endpoints
from support import TopicTail, unique

from services.console.adapters.upstream import ShopApi, UpstreamProblem
from services.console.domain.roles import Role
from shared.events import event_model


@pytest.fixture(scope="module")
async def stack(infrastructure: Endpoints) -> AsyncIterator[ShopsStack]:
    async with console_with_shops(infrastructure, notify="shops") as stack:
        yield stack


@pytest.mark.parametrize(
    ("language", "unavailable"),
    [
        ("en", "The messages service's templates are unavailable."),
        ("vi", "Không lấy được các mẫu của dịch vụ tin nhắn."),
    ],
)
async def test_the_pages_say_unavailable_when_notify_has_no_templates_api(
    stack: ShopsStack, language: str, unavailable: str
) -> None:
    shop = unique("shop")
    user = await stack.console.make_user({shop: Role.READ_ONLY}, locale=language)
    async with stack.console.client() as client:
        await signed_in(client, user)
        listing = await client.get(f"/shops/{shop}/messages")
        one = await client.get(f"/shops/{shop}/messages/points_earned")
        frame = await client.get(f"/shops/{shop}/messages/points_earned/en/preview.html")
    with pytest.raises(UpstreamProblem) as refused:
        await ShopApi(shop, user.user_id, stack.upstream).templates()
    assert refused.value.status == 404
    assert listing.status_code == 200
    assert unavailable in listing.text
    assert f'<html lang="{language}">' in listing.text
    assert one.status_code == 200
    assert one.text.count('lang="vi">Tiếng Việt</h2>') == 1
    assert one.text.count('lang="en">English</h2>') == 1
    assert "test-send" not in one.text  # read-only staff preview, never send
    assert frame.status_code == 404


async def send_test(
    stack: ShopsStack, infrastructure: Endpoints, shop: str, role: Role, language: str
) -> tuple[int, str, list[dict[str, Any]]]:
    """A test send from the template's page; the answer, the page, and the events seen."""
    user = await stack.console.make_user({shop: role}, locale="en")
    async with (
        stack.console.client() as client,
        TopicTail(infrastructure.kafka_bootstrap, "loyalty.console") as tail,
    ):
        await signed_in(client, user)
        page = await client.get(f"/shops/{shop}/messages/points_earned")
        answer = await client.post(
            f"/shops/{shop}/messages/points_earned/test-send",
            data={"csrf_token": csrf_of(page.text), "language": language},
        )
        after = await client.get(answer.headers.get("location", page.url.path))
        records = (
            await tail.collect(lambda r: r.key == shop.encode(), count=1)
            if answer.status_code == 303
            else []
        )
    return answer.status_code, after.text, [json.loads(r.value) for r in records]


async def test_a_marketer_sends_a_test_to_their_own_address(
    stack: ShopsStack, infrastructure: Endpoints
) -> None:
    shop = unique("shop")
    status, page, events = await send_test(stack, infrastructure, shop, Role.MARKETER, "en")
    event = events[0]
    parsed = event_model("message.test_requested").model_validate(event)
    user_id = parsed.data.requested_by
    email = await stack.console.pool.fetchval(
        "SELECT email FROM console.users WHERE user_id = $1", user_id
    )
    logged = await stack.console.pool.fetchval(
        "SELECT count(*) FROM console.actions WHERE user_id = $1 AND shop_id = $2"
        " AND action = 'message_test_requested' AND target = 'points_earned'",
        user_id,
        shop,
    )
    assert status == 303
    assert (event["type"], event["subject"]) == ("message.test_requested", shop)
    assert (parsed.data.template, parsed.data.locale, parsed.data.channel) == (
        "points_earned",
        "en",
        "email",
    )
    assert parsed.data.to_email == email
    assert f"A test is on its way to {email}." in page
    assert logged == 1


@pytest.mark.parametrize("role", [Role.SUPPORT, Role.READ_ONLY])
async def test_support_and_read_only_staff_may_not_send_a_test(
    stack: ShopsStack, infrastructure: Endpoints, role: Role
) -> None:
    shop = unique("shop")
    status, _page, events = await send_test(stack, infrastructure, shop, role, "vi")
    sent = await stack.console.pool.fetchval(
        "SELECT count(*) FROM console.actions WHERE shop_id = $1", shop
    )
    assert status == 403
    assert (events, sent) == ([], 0)
