"""What a delivery channel is: send one rendered message, or say how it failed.

    DeliveryError
     ├── TransientDelivery   the server or network is briefly unavailable: retried with backoff
     │    └── ChannelUnavailable  nothing can go until an operator acts (credentials refused,
     │                            a certificate not trusted): retried, the try not counted
     └── PermanentDelivery   this message can never be delivered as it is: recorded as failed
          └── SubscriptionGone  the push service forgot the subscription (404/410): removed

A new channel (FCM, SMS) implements `Channel` and is registered in bootstrap; the triggers
and the worker never change for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from services.notify.rendering import Rendered


class DeliveryError(Exception):
    """A message was not delivered; the text never contains an address or the content."""


class TransientDelivery(DeliveryError):
    """Try again later."""


class ChannelUnavailable(TransientDelivery):
    """The channel itself is refused or not trusted: no fault of the message, which would
    otherwise use up its attempts and be lost while the setting is wrong."""


class PermanentDelivery(DeliveryError):
    """Trying again will not help."""


class SubscriptionGone(PermanentDelivery):
    """The push subscription no longer exists."""


@dataclass(frozen=True, slots=True)
class Envelope:
    """One rendered message and where it goes."""

    message_id: str
    shop_id: str
    customer_id: str | None  # None: mail to a shop's staff, not to a customer
    trigger: str
    category: str
    rendered: Rendered
    email: str | None
    name: str | None
    push_subscription: dict[str, Any] | None
    unsubscribe_url: str | None  # None: not a mail one unsubscribes from (staff mail)
    link: str
    mail_from: str  # the shop's sender, `Name <address>`


class Channel(Protocol):
    """A way to reach a customer."""

    name: str

    def can_reach(self, envelope: Envelope) -> bool:
        """Whether the customer has an address on this channel."""
        ...

    async def send(self, envelope: Envelope) -> None:
        """Deliver, or raise a DeliveryError."""
        ...

    async def close(self) -> None: ...
