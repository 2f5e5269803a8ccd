"""Who may do what in a shop's console: roles, capabilities and the matrix between them."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A staff member's role in one shop."""

    OWNER = "owner"
    MARKETER = "marketer"
    SUPPORT = "support"
    READ_ONLY = "read_only"


class Capability(StrEnum):
    """Something a page or an action needs beyond seeing the shop."""

    VIEW = "view"
    EDIT_PROGRAMME = "edit_programme"
    PREVIEW_MESSAGES = "preview_messages"
    TEST_SEND = "test_send"
    ACT_ON_CUSTOMERS = "act_on_customers"
    SEE_DEAD_LETTERS = "see_dead_letters"
    REPLAY_DEAD_LETTERS = "replay_dead_letters"
    MANAGE_STAFF = "manage_staff"
    MANAGE_WIDGET = "manage_widget"


_EVERYONE = frozenset({Capability.VIEW, Capability.PREVIEW_MESSAGES})

MATRIX: dict[Role, frozenset[Capability]] = {
    Role.OWNER: frozenset(Capability),
    Role.MARKETER: _EVERYONE
    | {Capability.EDIT_PROGRAMME, Capability.TEST_SEND, Capability.ACT_ON_CUSTOMERS},
    Role.SUPPORT: _EVERYONE | {Capability.ACT_ON_CUSTOMERS, Capability.SEE_DEAD_LETTERS},
    Role.READ_ONLY: _EVERYONE,
}


def allows(role: Role | None, capability: Capability, *, platform_operator: bool) -> bool:
    """A platform operator may do everything in every shop; staff what their role allows."""
    if platform_operator:
        return True
    return role is not None and capability in MATRIX[role]
