"""Data models of the console's events (topic loyalty.console): staff mail that notify sends.

Their CloudEvents subject and Kafka key is the shop id, so that one shop's staff events stay
in order. They carry a staff member's email address (the mail's recipient) and an invitation
link holding a single-use secret: the topic keeps them 7 days.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shared.events.fields import Contract, EventTime, Identifier, Label, ShopId
from shared.events.inputs.customers import EmailAddress

__all__ = ["ConsoleLanguage", "MessageTestRequested", "StaffInvited", "StaffRole"]

StaffRole = Literal["owner", "marketer", "support", "read_only"]
ConsoleLanguage = Literal["vi", "en"]


class StaffInvited(Contract):
    """A shop's owner invited someone to the console: notify mails them the link."""

    shop_id: ShopId
    shop_name: Label
    invitation_id: Identifier
    email: EmailAddress
    role: StaffRole
    locale: ConsoleLanguage
    invited_by_name: Label
    accept_url: str = Field(
        min_length=1, max_length=2000, description="Single use; the console keeps only its hash."
    )
    expires_at: EventTime


class MessageTestRequested(Contract):
    """A staff member asked for a template sent with sample data to their own address."""

    shop_id: ShopId
    request_id: Identifier
    template: Identifier
    locale: ConsoleLanguage
    channel: Literal["email"] = "email"
    to_email: EmailAddress
    requested_by: Identifier
