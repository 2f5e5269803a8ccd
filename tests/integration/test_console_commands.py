"""`loyalty console create-user`: the first account of a shop (or an operator), with a
password printed once, and a second run that refuses or, when asked, sets a new password."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from console_support import ConsoleService, console_service, sign_in_form
from infrastructure import Endpoints
from support import loyalty_command, unique

PASSWORD_LINE = re.compile(r"^password \(shown once\): (\S+)$", re.M)


@pytest.fixture(scope="module")
async def console(infrastructure: Endpoints) -> AsyncIterator[ConsoleService]:
    async with console_service(infrastructure) as service:
        yield service


def command_env(infrastructure: Endpoints) -> dict[str, str]:
    return {
        "LOYALTY_DATABASE_URL": infrastructure.database_url,
        "LOYALTY_KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap,
        "LOYALTY_CONSOLE_ARGON2_MEMORY_KIB": "1024",
        "LOYALTY_CONSOLE_ARGON2_TIME_COST": "1",
        "LOYALTY_CONSOLE_ARGON2_PARALLELISM": "1",
    }


async def sign_in_status(console: ConsoleService, email: str, password: str) -> int:
    async with console.client() as client:
        token = await sign_in_form(client)
        answer = await client.post(
            "/sign-in", data={"email": email, "password": password, "csrf_token": token}
        )
    return answer.status_code


async def test_create_user_prints_a_password_once_that_signs_in_to_the_shop(
    console: ConsoleService, infrastructure: Endpoints
) -> None:
    email, shop = f"{unique('owner')}@shop.example", unique("shop")
    env = command_env(infrastructure)
    made = loyalty_command("console", "create-user", email, "--shop", shop, env=env)
    found = PASSWORD_LINE.search(made.stdout)
    assert made.returncode == 0, made.stderr
    assert found is not None
    password = found[1]
    assert len(password) >= 12
    assert password not in made.stderr
    assert await sign_in_status(console, email, password) == 303
    role = await console.pool.fetchval(
        """SELECT m.role FROM console.memberships m JOIN console.users u USING (user_id)
           WHERE u.email = $1 AND m.shop_id = $2""",
        email,
        shop,
    )
    assert role == "owner"


async def test_a_second_create_refuses_unless_asked_to_reset_the_password(
    console: ConsoleService, infrastructure: Endpoints
) -> None:
    email = f"{unique('op')}@platform.example"
    env = command_env(infrastructure)
    first = loyalty_command("console", "create-user", email, "--operator", env=env)
    again = loyalty_command("console", "create-user", email, "--operator", env=env)
    reset = loyalty_command(
        "console", "create-user", email, "--operator", "--reset-password", env=env
    )
    old, new = PASSWORD_LINE.search(first.stdout), PASSWORD_LINE.search(reset.stdout)
    assert old is not None and new is not None
    assert again.returncode == 1
    assert again.stderr.strip() == "loyalty: an account with that email exists already"
    assert reset.returncode == 0, reset.stderr
    assert await sign_in_status(console, email, old[1]) == 401
    assert await sign_in_status(console, email, new[1]) == 303
