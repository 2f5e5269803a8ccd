"""Signing in to the console against real PostgreSQL: sessions held as hashes in Secure
cookies with Max-Age only, the login throttle per email and per address, idle and absolute
expiry, sign-out, rehashing, disabled accounts."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from http.cookies import SimpleCookie

import httpx
import pytest
from argon2 import PasswordHasher
from console_support import (
    PASSWORD,
    ConsoleService,
    console_service,
    csrf_of,
    sign_in_form,
    signed_in,
)
from infrastructure import Endpoints

from services.console import handlers
from services.console.auth import SESSION_COOKIE
from services.console.domain.roles import Role


@pytest.fixture(scope="module")
async def console(infrastructure: Endpoints) -> AsyncIterator[ConsoleService]:
    async with console_service(infrastructure) as service:
        yield service


def set_cookie(answer_headers: list[str], name: str) -> SimpleCookie:
    for header in answer_headers:
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie
    raise AssertionError(f"no Set-Cookie for {name}")


async def test_signing_in_sets_a_host_only_secure_cookie_whose_hash_alone_is_stored(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    async with console.client() as client:
        answer = await signed_in(client, user)
        home = await client.get(answer.headers["location"])
    raw = answer.headers.get_list("set-cookie")
    header = next(h for h in raw if h.startswith(SESSION_COOKIE))
    morsel = set_cookie(raw, SESSION_COOKIE)[SESSION_COOKIE]
    stored = await console.pool.fetchval(
        "SELECT count(*) FROM console.sessions WHERE user_id = $1 AND session_sha256 = $2",
        user.user_id,
        hashlib.sha256(morsel.value.encode()).hexdigest(),
    )
    in_clear = await console.pool.fetchval(
        "SELECT count(*) FROM console.sessions WHERE session_sha256 = $1", morsel.value
    )
    assert answer.headers["location"] == "/shops/shop-a/"
    assert home.status_code == 200
    assert (stored, in_clear) == (1, 0)
    assert morsel["secure"] and morsel["httponly"]
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert not morsel["domain"]
    assert int(morsel["max-age"]) == 43_200
    assert "expires" not in header.lower()


async def test_a_user_of_several_shops_or_an_operator_lands_on_the_shop_picker(
    console: ConsoleService,
) -> None:
    staff = await console.make_user({"shop-a": Role.MARKETER, "shop-b": Role.SUPPORT})
    operator = await console.make_user(operator=True)
    async with console.client() as one, console.client() as two:
        first = await signed_in(one, staff)
        second = await signed_in(two, operator)
        picker = await one.get("/shops")
    assert first.headers["location"] == second.headers["location"] == "/shops"
    assert 'href="/shops/shop-a/"' in picker.text
    assert 'href="/shops/shop-b/"' in picker.text


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    async with console.client() as client:
        wrong = await client.post(
            "/sign-in",
            data={
                "email": user.email,
                "password": "not the password",
                "csrf_token": await sign_in_form(client),
            },
        )
        unknown = await client.post(
            "/sign-in",
            data={
                "email": "nobody@shop.example",
                "password": PASSWORD,
                "csrf_token": await sign_in_form(client),
            },
        )
    assert wrong.status_code == unknown.status_code == 401
    assert SESSION_COOKIE not in client.cookies
    assert "Email hoặc mật khẩu không đúng." in wrong.text
    assert wrong.text.count('role="alert"') == unknown.text.count('role="alert"') == 1


async def test_the_sign_in_form_needs_its_own_token(console: ConsoleService) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    async with console.client() as client:
        await sign_in_form(client)
        forged = await client.post(
            "/sign-in", data={"email": user.email, "password": PASSWORD, "csrf_token": "forged"}
        )
    async with console.client() as fresh:
        without_cookie = await fresh.post(
            "/sign-in", data={"email": user.email, "password": PASSWORD, "csrf_token": "x"}
        )
    assert forged.status_code == without_cookie.status_code == 403


async def attempt(client: httpx.AsyncClient, email: str, password: str) -> int:
    token = await sign_in_form(client)
    answer = await client.post(
        "/sign-in", data={"email": email, "password": password, "csrf_token": token}
    )
    return answer.status_code


async def test_five_failures_for_an_email_hold_its_sign_in_until_the_window_ends(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    async with console.client() as client:
        failures = [await attempt(client, user.email.upper(), "wrong password!") for _ in range(5)]
        token = await sign_in_form(client)
        held = await client.post(
            "/sign-in", data={"email": user.email, "password": PASSWORD, "csrf_token": token}
        )
    async with console.client() as elsewhere:
        also_held = await attempt(elsewhere, user.email, PASSWORD)
    console.clock.set(console.clock.now() + timedelta(seconds=901))
    async with console.client() as later:
        after_window = await attempt(later, user.email, PASSWORD)
    assert failures == [401] * 5
    assert held.status_code == 429
    assert 1 <= int(held.headers["retry-after"]) <= 901
    assert "Quá nhiều lần thử không thành công" in held.text
    assert also_held == 429
    assert after_window == 303


async def test_many_failures_from_one_address_hold_every_email_from_it(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    guesses = [f"guess-{uuid.uuid4().hex[:12]}@shop.example" for _ in range(30)]
    async with console.client() as client:
        failures = [await attempt(client, guess, "wrong password!") for guess in guesses]
        held = await attempt(client, user.email, PASSWORD)
    async with console.client() as other_address:
        elsewhere = await attempt(other_address, user.email, PASSWORD)
    assert set(failures) == {401}
    assert held == 429
    assert elsewhere == 303


async def test_failures_counted_at_a_later_clock_do_not_hold_after_the_clock_steps_back(
    console: ConsoleService,
) -> None:
    """A clock corrected backwards (or a database shared with a run whose clock stood ahead)
    leaves windows that start in the future: they hold nothing, and the next failure opens a
    window at the present time."""
    user = await console.make_user({"shop-a": Role.OWNER})
    present = console.clock.now()
    console.clock.set(present + timedelta(days=365))
    async with console.client() as client:
        ahead = [await attempt(client, user.email, "wrong password!") for _ in range(5)]
        held_ahead = await attempt(client, user.email, PASSWORD)
    console.clock.set(present)
    async with console.client() as client:
        after_step_back = [await attempt(client, user.email, "wrong password!") for _ in range(4)]
        signed = await attempt(client, user.email, PASSWORD)
    assert ahead == [401] * 5
    assert held_ahead == 429
    assert after_step_back == [401] * 4
    assert signed == 303


async def test_a_success_forgets_the_emails_earlier_failures(console: ConsoleService) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    async with console.client() as client:
        for _ in range(4):
            await attempt(client, user.email, "wrong password!")
        ok = await attempt(client, user.email, PASSWORD)
        again = [await attempt(client, user.email, "wrong password!") for _ in range(4)]
        still_ok = await attempt(client, user.email, PASSWORD)
    assert (ok, still_ok) == (303, 303)
    assert again == [401] * 4


async def test_a_session_ends_after_thirty_idle_minutes(console: ConsoleService) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    async with console.client() as client:
        await signed_in(client, user)
        console.clock.set(console.clock.now() + timedelta(minutes=29))
        kept = await client.get("/shops")
        console.clock.set(console.clock.now() + timedelta(minutes=29))
        still = await client.get("/shops")
        console.clock.set(console.clock.now() + timedelta(minutes=30))
        ended = await client.get("/shops")
    assert kept.status_code == still.status_code == 200
    assert ended.status_code == 303
    assert ended.headers["location"] == "/sign-in?next=/shops"


async def test_a_session_ends_twelve_hours_after_sign_in_however_busy(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    async with console.client() as client:
        await signed_in(client, user)
        statuses = []
        for _ in range(12 * 3):  # a request every 20 minutes
            console.clock.set(console.clock.now() + timedelta(minutes=20))
            statuses.append((await client.get("/shops")).status_code)
    assert statuses[:-1] == [200] * 35
    assert statuses[-1] == 303


async def test_signing_out_ends_the_session_for_the_old_cookie_too(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    async with console.client() as client:
        await signed_in(client, user)
        cookie = client.cookies[SESSION_COOKIE]
        page = await client.get("/shops")
        token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
        out = await client.post("/sign-out", data={"csrf_token": token})
    async with console.client() as replay:
        replay.cookies.set(SESSION_COOKIE, cookie)
        after = await replay.get("/shops")
    left = await console.pool.fetchval(
        "SELECT count(*) FROM console.sessions WHERE user_id = $1", user.user_id
    )
    assert out.status_code == 303
    assert "max-age=0" in out.headers["set-cookie"].lower()
    assert after.status_code == 303
    assert left == 0


async def test_a_hash_made_with_other_costs_is_redone_at_sign_in(console: ConsoleService) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    old = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1).hash(PASSWORD)
    await console.pool.execute(
        "UPDATE console.users SET password_hash = $2 WHERE user_id = $1", user.user_id, old
    )
    async with console.client() as client:
        await signed_in(client, user)
    new = await console.pool.fetchval(
        "SELECT password_hash FROM console.users WHERE user_id = $1", user.user_id
    )
    assert new != old
    assert new.startswith("$argon2id$v=19$m=1024,t=1,p=1$")


async def test_a_disabled_account_cannot_sign_in_and_loses_its_sessions(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    async with console.client() as client:
        await signed_in(client, user)
        await console.pool.execute(
            "UPDATE console.users SET disabled_at = now() WHERE user_id = $1", user.user_id
        )
        page = await client.get("/shops")
        again = await attempt(client, user.email, PASSWORD)
    assert page.status_code == 303
    assert again == 401


async def test_an_account_needs_a_password_of_twelve_characters_and_a_free_email(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER})
    with pytest.raises(handlers.AccountRefused, match="12 characters"):
        await handlers.create_user(
            console.pool,
            passwords=console.console.passwords,
            email="short@shop.example",
            name="Short",
            password="eleven char",
            now=console.clock.now(),
        )
    with pytest.raises(handlers.AccountRefused, match="exists"):
        await handlers.create_user(
            console.pool,
            passwords=console.console.passwords,
            email=user.email.upper(),
            name="Twin",
            password=PASSWORD,
            now=console.clock.now(),
        )


async def test_changing_the_password_ends_every_session_and_the_old_password(
    console: ConsoleService,
) -> None:
    user = await console.make_user({"shop-a": Role.OWNER}, locale="en")
    new = "a new and longer passphrase"
    async with console.client() as client, console.client() as elsewhere:
        await signed_in(client, user)
        await signed_in(elsewhere, user)
        page = await client.get("/account")
        token = csrf_of(page.text)
        wrong = await client.post(
            "/account/password", data={"csrf_token": token, "current": "nope", "new": new}
        )
        short = await client.post(
            "/account/password", data={"csrf_token": token, "current": PASSWORD, "new": "short"}
        )
        changed = await client.post(
            "/account/password", data={"csrf_token": token, "current": PASSWORD, "new": new}
        )
        other_session = await elsewhere.get("/shops")
        old = await attempt(client, user.email, PASSWORD)
        fresh = await attempt(client, user.email, new)
    assert page.status_code == 200
    assert user.email in page.text
    assert wrong.status_code == short.status_code == 422
    assert changed.status_code == 303
    assert changed.headers["location"] == "/sign-in"
    assert other_session.status_code == 303
    assert (old, fresh) == (401, 303)
