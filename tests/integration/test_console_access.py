"""Who reaches what in the console: every shop route is a 404 for staff of another shop, a
403 for a role without the capability, and every unsafe route needs the session's CSRF token
and a request from the console's own pages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from console_support import ORIGIN, ConsoleService, console_service, csrf_of, signed_in
from fastapi.routing import APIRoute
from infrastructure import Endpoints

from services.console.domain.roles import Role

SAFE = {"GET", "HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
async def console(infrastructure: Endpoints) -> AsyncIterator[ConsoleService]:
    async with console_service(infrastructure) as service:
        yield service


def routes(console: ConsoleService) -> list[tuple[str, str]]:
    """(method, path) of every page route of the console, as the app declares them."""
    found = []
    pending = list(console.app.api.routes)
    while pending:
        route = pending.pop(0)
        # The widget API is no page: a bearer token, not a session (test_console_widget_api).
        if isinstance(route, APIRoute) and not route.path.startswith("/widget/"):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
        # FastAPI keeps an included router as a route of its own (the console uses no prefix).
        elif (router := getattr(route, "original_router", None)) is not None:
            pending += router.routes
    return found


def shop_routes(console: ConsoleService) -> list[tuple[str, str]]:
    return [(m, p) for m, p in routes(console) if "{shop}" in p]


def shop_pages(console: ConsoleService) -> list[str]:
    """The GET routes that need nothing but the shop."""
    return [p for m, p in shop_routes(console) if m == "GET" and p.count("{") == 1]


def url(path: str, shop: str, **ids: str) -> str:
    defaults = {"user_id": "u_x", "invitation_id": "inv_x", "kid": "k_x", "kind": "earn"}
    defaults |= {"version": "1", "template": "points_earned", "language": "vi"}
    defaults |= {"customer_id": "c-x", "message_id": "1"}
    return path.format(shop=shop, **(defaults | ids))


async def request(client: httpx.AsyncClient, method: str, path: str, **kw: object) -> int:
    answer = await client.request(method, path, **kw)  # type: ignore[arg-type]
    return answer.status_code


async def test_the_console_has_shop_routes_to_check(console: ConsoleService) -> None:
    assert ("GET", "/shops/{shop}/") in shop_routes(console)
    assert ("GET", "/shops/{shop}/staff") in shop_routes(console)
    assert ("POST", "/shops/{shop}/staff/{user_id}/remove") in shop_routes(console)


async def test_every_route_of_another_shop_is_not_found_and_changes_nothing(
    console: ConsoleService,
) -> None:
    owner = await console.make_user({"shop-a": Role.OWNER}, locale="en")
    owner_b = await console.make_user({"shop-b": Role.OWNER})
    member_b = await console.make_user({"shop-b": Role.MARKETER})
    ids = {"user_id": member_b.user_id}
    async with console.client() as client:
        await signed_in(client, owner)
        token = csrf_of((await client.get("/shops")).text)
        own = [await request(client, "GET", url(p, "shop-a")) for p in shop_pages(console)]
        form = {"csrf_token": token, "role": "owner", "email": "x@shop.example"}
        other = {
            (m, p): await request(client, m, url(p, "shop-b", **ids), data=form)
            for m, p in shop_routes(console)
        }
        page = await client.get("/shops/shop-b/")
    role = await console.pool.fetchval(
        "SELECT role FROM console.memberships WHERE user_id = $1", member_b.user_id
    )
    invited = await console.pool.fetchval(
        "SELECT count(*) FROM console.invitations WHERE shop_id = 'shop-b' AND invited_by = $1",
        owner.user_id,
    )
    assert set(own) == {200}
    assert set(other.values()) == {404}
    assert "Not found" in page.text
    assert (role, invited) == ("marketer", 0)
    assert owner_b.user_id != owner.user_id


async def test_a_platform_operator_reaches_every_shop(console: ConsoleService) -> None:
    operator = await console.make_user(operator=True)
    async with console.client() as client:
        await signed_in(client, operator)
        answers = [await request(client, "GET", url(p, "any-shop")) for p in shop_pages(console)]
        go = await client.get("/shops/go", params={"shop": "any-shop"})
    assert set(answers) == {200}
    assert go.headers["location"] == "/shops/any-shop/"


@pytest.mark.parametrize("role", [Role.MARKETER, Role.SUPPORT, Role.READ_ONLY])
async def test_only_an_owner_sees_the_staff_page(console: ConsoleService, role: Role) -> None:
    user = await console.make_user({"shop-a": role}, locale="en")
    async with console.client() as client:
        await signed_in(client, user)
        home = await client.get("/shops/shop-a/")
        staff = await client.get("/shops/shop-a/staff")
        token = csrf_of(home.text)
        owner_only = [
            await request(client, m, url(p, "shop-a"), data={"csrf_token": token})
            for m, p in shop_routes(console)
            if "/staff" in p
        ]
    assert set(owner_only) == {403}
    assert home.status_code == 200
    assert "/shops/shop-a/staff" not in home.text
    assert staff.status_code == 403
    assert "Not allowed" in staff.text


async def test_the_owner_sees_the_shops_staff_and_only_theirs(console: ConsoleService) -> None:
    owner = await console.make_user({"shop-c": Role.OWNER})
    marketer = await console.make_user({"shop-c": Role.MARKETER})
    elsewhere = await console.make_user({"shop-d": Role.OWNER})
    async with console.client() as client:
        await signed_in(client, owner)
        staff = await client.get("/shops/shop-c/staff")
    assert staff.status_code == 200
    assert owner.email in staff.text
    assert marketer.email in staff.text
    assert elsewhere.email not in staff.text


async def test_signed_out_every_shop_route_leads_to_the_sign_in_page(
    console: ConsoleService,
) -> None:
    async with console.client() as client:
        answers = [await client.request(m, url(p, "shop-a")) for m, p in shop_routes(console)]
    assert {a.status_code for a in answers} == {303}
    assert all(a.headers["location"].startswith("/sign-in") for a in answers)


async def test_every_unsafe_route_refuses_a_missing_or_wrong_csrf_token(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER}, locale="en")
    # Before a session there is no session token: the sign-in form has its own (double-submit)
    # and an invitation's link holds its secret.
    no_session = {"/sign-in", "/invitations/{token}"}
    unsafe = [(m, p) for m, p in routes(console) if m not in SAFE and p not in no_session]
    async with console.client() as client:
        await signed_in(client, user)
        token = csrf_of((await client.get("/shops")).text)
        missing = [await request(client, m, url(p, "shop-a")) for m, p in unsafe]
        wrong = [
            await request(client, m, url(p, "shop-a"), data={"csrf_token": token[:-2]})
            for m, p in unsafe
        ]
        by_header = await client.post(
            "/language", data={"language": "vi"}, headers={"X-CSRF-Token": token}
        )
        still_english = await client.get("/shops")
    assert ("POST", "/sign-out") in unsafe
    assert ("POST", "/language") in unsafe
    assert ("POST", "/shops/{shop}/staff/invitations") in unsafe
    assert set(missing) == set(wrong) == {403}
    assert by_header.status_code == 303
    assert '<html lang="vi">' in still_english.text


async def test_a_request_from_another_site_is_refused_even_with_the_token(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    async with console.client() as client:
        await signed_in(client, user)
        token = csrf_of((await client.get("/shops")).text)
        form = {"csrf_token": token, "language": "en"}
        cross_site = await client.post(
            "/language", data=form, headers={"Sec-Fetch-Site": "cross-site"}
        )
        other_origin = await client.post(
            "/language", data=form, headers={"Origin": "https://evil.example"}
        )
        null_origin = await client.post("/language", data=form, headers={"Origin": "null"})
        same_origin = await client.post(
            "/language", data=form, headers={"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}
        )
    language = await console.pool.fetchval(
        "SELECT locale FROM console.users WHERE user_id = $1", user.user_id
    )
    assert (cross_site.status_code, other_origin.status_code, null_origin.status_code) == (
        403,
        403,
        403,
    )
    assert same_origin.status_code == 303
    assert language == "en"


async def test_the_language_switch_is_kept_on_the_account(console: ConsoleService) -> None:
    user = await console.make_user({"shop-a": Role.OWNER}, locale="vi")
    async with console.client() as client:
        await signed_in(client, user)
        token = csrf_of((await client.get("/shops/shop-a/")).text)
        await client.post(
            "/language", data={"csrf_token": token, "language": "en", "next": "/shops/shop-a/"}
        )
    async with console.client() as another_browser:
        await signed_in(another_browser, user)
        page = await another_browser.get("/shops/shop-a/")
    assert '<html lang="en">' in page.text
    assert "Sign out" in page.text


async def test_a_next_path_never_leads_to_another_site(console: ConsoleService) -> None:
    user = await console.make_user({"shop-a": Role.OWNER, "shop-b": Role.OWNER})
    async with console.client() as client:
        page = await client.get("/sign-in", params={"next": "//evil.example/x"})
        token = csrf_of(page.text)
        answer = await client.post(
            "/sign-in",
            data={
                "email": user.email,
                "password": "correct horse battery staple",
                "csrf_token": token,
                "next": "https://evil.example/",
            },
        )
    assert 'value="/shops"' in page.text
    assert answer.headers["location"] == "/shops"
