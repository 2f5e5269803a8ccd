"""A shop's staff in the console, on real PostgreSQL and Kafka: an owner invites (staff.invited
on loyalty.console, through the outbox), the link works once and for 72 hours, roles change,
members leave, and a shop always keeps an owner."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from console_support import PASSWORD, ConsoleService, console_service, csrf_of, signed_in
from infrastructure import Endpoints
from support import TopicTail, unique

from services.console.adapters.accounts import User
from services.console.auth import SESSION_COOKIE
from services.console.domain.roles import Role
from shared.events import event_model


@pytest.fixture(scope="module")
async def console(infrastructure: Endpoints) -> AsyncIterator[ConsoleService]:
    async with console_service(infrastructure) as service:
        yield service


@contextlib.asynccontextmanager
async def owner_client(
    console: ConsoleService, shop: str
) -> AsyncIterator[tuple[httpx.AsyncClient, User, str]]:
    """A browser signed in as a new owner of the shop, and its CSRF token."""
    owner = await console.make_user({shop: Role.OWNER}, locale="en")
    async with console.client() as client:
        await signed_in(client, owner)
        token = csrf_of((await client.get(f"/shops/{shop}/staff")).text)
        yield client, owner, token


async def invite(
    console: ConsoleService,
    infrastructure: Endpoints,
    client: httpx.AsyncClient,
    token: str,
    shop: str,
    email: str,
    role: str = "marketer",
) -> dict[str, Any]:
    """Invite through the staff page; the staff.invited event as it reached Kafka."""
    async with TopicTail(infrastructure.kafka_bootstrap, "loyalty.console") as tail:
        answer = await client.post(
            f"/shops/{shop}/staff/invitations",
            data={"csrf_token": token, "email": email, "role": role, "language": "vi"},
        )
        assert answer.status_code == 303, answer.text
        records = await tail.collect(
            lambda r: r.key == shop.encode() and json.loads(r.value)["data"]["email"] == email,
            count=1,
        )
    event: dict[str, Any] = json.loads(records[0].value)
    return event


async def test_an_invitation_is_announced_on_loyalty_console_with_a_single_use_link(
    console: ConsoleService, infrastructure: Endpoints
) -> None:
    shop = unique("shop")
    async with owner_client(console, shop) as (client, owner, token):
        event = await invite(console, infrastructure, client, token, shop, "new@shop.example")
        page = await client.get(f"/shops/{shop}/staff")
    parsed = event_model("staff.invited").model_validate(event)
    link = event["data"]["accept_url"]
    secret = link.rsplit("/", 1)[1]
    stored = await console.pool.fetchval(
        "SELECT count(*) FROM console.invitations WHERE token_sha256 = $1 OR token_sha256 = $2",
        secret,
        link,
    )
    assert (event["type"], event["subject"]) == ("staff.invited", shop)
    assert parsed.data.role == "marketer"
    assert event["data"]["invited_by_name"] == owner.name
    assert event["data"]["locale"] == "vi"
    assert link.startswith("http://127.0.0.1:8006/invitations/")
    assert stored == 0
    assert "new@shop.example" in page.text


async def test_an_invited_person_makes_an_account_once_and_lands_in_the_shop(
    console: ConsoleService, infrastructure: Endpoints
) -> None:
    shop, email = unique("shop"), f"{unique('mai')}@shop.example"
    async with owner_client(console, shop) as (client, _owner, token):
        event = await invite(console, infrastructure, client, token, shop, email)
    path = httpx.URL(event["data"]["accept_url"]).path
    async with console.client() as newcomer:
        form = await newcomer.get(path)
        accepted = await newcomer.post(path, data={"name": "Mai", "password": PASSWORD})
        again = await newcomer.post(path, data={"name": "Mai", "password": PASSWORD})
        user = User("", email, "Mai", "vi", False, False)
        landed = await signed_in(newcomer, user)
    role = await console.pool.fetchval(
        """SELECT m.role FROM console.memberships m JOIN console.users u USING (user_id)
           WHERE lower(u.email) = $2 AND m.shop_id = $1""",
        shop,
        email,
    )
    assert form.status_code == 200
    assert 'name="name"' in form.text
    assert accepted.status_code == 303
    assert again.status_code == 404
    assert landed.headers["location"] == f"/shops/{shop}/"
    assert role == "marketer"


async def test_a_link_is_unusable_after_72_hours(
    console: ConsoleService, infrastructure: Endpoints
) -> None:
    shop = unique("shop")
    async with owner_client(console, shop) as (client, _owner, token):
        event = await invite(console, infrastructure, client, token, shop, "late@shop.example")
    path = httpx.URL(event["data"]["accept_url"]).path
    console.clock.set(console.clock.now() + timedelta(hours=72, seconds=1))
    async with console.client() as late:
        page = await late.get(path)
        post = await late.post(path, data={"name": "Late", "password": PASSWORD})
    assert page.status_code == post.status_code == 404
    assert "no longer valid" in page.text or "không còn hiệu lực" in page.text


async def test_a_new_invitation_revokes_the_older_link_and_the_owner_can_revoke(
    console: ConsoleService, infrastructure: Endpoints
) -> None:
    shop = unique("shop")
    async with owner_client(console, shop) as (client, _owner, token):
        first = await invite(console, infrastructure, client, token, shop, "twice@shop.example")
        second = await invite(console, infrastructure, client, token, shop, "twice@shop.example")
        invitation_id = second["data"]["invitation_id"]
        revoked = await client.post(
            f"/shops/{shop}/staff/invitations/{invitation_id}/revoke", data={"csrf_token": token}
        )
    async with console.client() as person:
        old = await person.get(httpx.URL(first["data"]["accept_url"]).path)
        new = await person.get(httpx.URL(second["data"]["accept_url"]).path)
    assert revoked.status_code == 303
    assert old.status_code == new.status_code == 404


async def test_someone_with_an_account_joins_another_shop_with_their_password(
    console: ConsoleService, infrastructure: Endpoints
) -> None:
    shop = unique("shop")
    existing = await console.make_user({unique("other"): Role.OWNER})
    async with owner_client(console, shop) as (client, _owner, token):
        event = await invite(
            console, infrastructure, client, token, shop, existing.email, "support"
        )
    path = httpx.URL(event["data"]["accept_url"]).path
    async with console.client() as person:
        form = await person.get(path)
        wrong = await person.post(path, data={"password": "not my password at all"})
        right = await person.post(path, data={"password": PASSWORD})
    role = await console.pool.fetchval(
        "SELECT role FROM console.memberships WHERE user_id = $1 AND shop_id = $2",
        existing.user_id,
        shop,
    )
    assert 'name="name"' not in form.text
    assert wrong.status_code == 422
    assert right.status_code == 303
    assert role == "support"


async def test_roles_change_and_a_removed_member_is_signed_out(console: ConsoleService) -> None:
    shop = unique("shop")
    member = await console.make_user({shop: Role.READ_ONLY})
    async with (
        owner_client(console, shop) as (client, _owner, token),
        console.client() as member_client,
    ):
        await signed_in(member_client, member)
        promoted = await client.post(
            f"/shops/{shop}/staff/{member.user_id}/role",
            data={"csrf_token": token, "role": "marketer"},
        )
        role = await console.pool.fetchval(
            "SELECT role FROM console.memberships WHERE user_id = $1", member.user_id
        )
        confirm = await client.get(f"/shops/{shop}/staff/{member.user_id}/remove")
        removed = await client.post(
            f"/shops/{shop}/staff/{member.user_id}/remove", data={"csrf_token": token}
        )
        after = await member_client.get(f"/shops/{shop}/")
    assert promoted.status_code == 303
    assert role == "marketer"
    assert confirm.status_code == 200
    assert member.email in confirm.text
    assert removed.status_code == 303
    assert after.status_code == 303
    assert SESSION_COOKIE in member_client.cookies


async def test_the_last_owner_can_be_neither_demoted_nor_removed(console: ConsoleService) -> None:
    shop = unique("shop")
    async with owner_client(console, shop) as (client, owner, token):
        demoted = await client.post(
            f"/shops/{shop}/staff/{owner.user_id}/role",
            data={"csrf_token": token, "role": "support"},
        )
        removed = await client.post(
            f"/shops/{shop}/staff/{owner.user_id}/remove", data={"csrf_token": token}
        )
        second = await console.make_user({shop: Role.OWNER})
        now_demoted = await client.post(
            f"/shops/{shop}/staff/{second.user_id}/role",
            data={"csrf_token": token, "role": "support"},
        )
    role = await console.pool.fetchval(
        "SELECT role FROM console.memberships WHERE user_id = $1 AND shop_id = $2",
        owner.user_id,
        shop,
    )
    assert demoted.status_code == removed.status_code == 409
    assert "A shop keeps at least one owner." in demoted.text
    assert role == "owner"
    assert now_demoted.status_code == 303


async def test_every_staff_change_is_in_the_append_only_audit(console: ConsoleService) -> None:
    shop = unique("shop")
    member = await console.make_user({shop: Role.SUPPORT})
    async with owner_client(console, shop) as (client, owner, token):
        await client.post(
            f"/shops/{shop}/staff/{member.user_id}/role",
            data={"csrf_token": token, "role": "read_only"},
        )
    actions = await console.pool.fetch(
        "SELECT user_id, action, target FROM console.actions WHERE shop_id = $1", shop
    )
    assert [(a["user_id"], a["action"], a["target"]) for a in actions] == [
        (owner.user_id, "role_changed_to_read_only", member.user_id)
    ]
    with pytest.raises(Exception, match="append-only"):
        await console.pool.execute("DELETE FROM console.actions WHERE shop_id = $1", shop)
