"""Who may do what in a shop's console: the matrix, as a table."""

from __future__ import annotations

import pytest

from services.console.domain.roles import Capability, Role, allows

C = Capability
TABLE: dict[Capability, set[Role]] = {
    C.VIEW: {Role.OWNER, Role.MARKETER, Role.SUPPORT, Role.READ_ONLY},
    C.EDIT_PROGRAMME: {Role.OWNER, Role.MARKETER},
    C.PREVIEW_MESSAGES: {Role.OWNER, Role.MARKETER, Role.SUPPORT, Role.READ_ONLY},
    C.TEST_SEND: {Role.OWNER, Role.MARKETER},
    C.ACT_ON_CUSTOMERS: {Role.OWNER, Role.MARKETER, Role.SUPPORT},
    C.SEE_DEAD_LETTERS: {Role.OWNER, Role.SUPPORT},
    C.REPLAY_DEAD_LETTERS: {Role.OWNER},
    C.MANAGE_STAFF: {Role.OWNER},
    C.MANAGE_WIDGET: {Role.OWNER},
}


def test_the_table_names_every_capability() -> None:
    assert set(TABLE) == set(Capability)


@pytest.mark.parametrize("capability", list(Capability))
@pytest.mark.parametrize("role", list(Role))
def test_a_role_has_exactly_the_capabilities_of_the_table(role: Role, capability: C) -> None:
    assert allows(role, capability, platform_operator=False) == (role in TABLE[capability])


@pytest.mark.parametrize("capability", list(Capability))
def test_a_platform_operator_may_do_everything_even_without_a_role(capability: C) -> None:
    assert allows(None, capability, platform_operator=True)


def test_no_role_allows_nothing() -> None:
    assert not any(allows(None, c, platform_operator=False) for c in Capability)
