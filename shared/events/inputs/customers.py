"""Data of the shop.customers topic: customer.signed_up and customer.updated."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Self

import email_validator
from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from shared.events.fields import (
    NAME_PATTERN,
    Birthday,
    Contract,
    CustomerId,
    HttpsUrl,
    Locale,
    ShopId,
    TimeZoneName,
)

__all__ = [
    "ChannelConsent",
    "CustomerSignedUp",
    "CustomerUpdated",
    "EmailAddress",
    "PersonName",
    "WebPushKeys",
    "WebPushSubscription",
]

PersonName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN),
    Field(
        description="The name to greet the customer with, 1 to 200 characters, no control"
        " characters."
    ),
]


def _email_address(text: str) -> str:
    """What `format: email` promises: a syntactically valid address, special-use domains
    (RFC 6761: example.test, shop.invalid, localhost) included. Whether a domain can receive
    mail is the sender's concern when it sends, not a reason to refuse a customer's sign-up.

    email-validator refuses special-use names even without a deliverability check, except
    `test` in its test mode: such a domain is checked as `test` in their place, then given back.
    """
    local, _, domain = text.rpartition("@")
    special = next(
        (
            name
            for name in email_validator.SPECIAL_USE_DOMAIN_NAMES
            if domain.lower() == name or domain.lower().endswith(f".{name}")
        ),
        None,
    )
    probe = f"{local}@{domain[: len(domain) - len(special)]}test" if special else text
    try:
        checked = email_validator.validate_email(
            probe, check_deliverability=False, globally_deliverable=False, test_environment=True
        )
    except email_validator.EmailNotValidError as exc:
        msg = f"value is not a valid email address: {exc}"
        raise ValueError(msg) from None
    if special:
        return f"{checked.local_part}@{checked.domain.removesuffix('test')}{special}"
    return str(checked.normalized)


# email-validator bounds the length (RFC 5321: 254 characters in all, 64 before the @).
EmailAddress = Annotated[
    str, AfterValidator(_email_address), WithJsonSchema({"type": "string", "format": "email"})
]


def _base64url_of(length: int) -> AfterValidator:
    def check(text: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != length:
            msg = f"must be base64url text of {length} bytes"
            raise ValueError(msg)
        return text

    return AfterValidator(check)


_BASE64URL = StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+={0,2}$")


class WebPushKeys(Contract):
    """The subscription's encryption keys (RFC 8291), as the browser gives them."""

    # An uncompressed P-256 public key is 65 bytes; the authentication secret is 16.
    p256dh: Annotated[str, _BASE64URL, _base64url_of(65)]
    auth: Annotated[str, _BASE64URL, _base64url_of(16)]


class WebPushSubscription(Contract):
    """A browser's Web Push subscription: where to deliver and how to encrypt."""

    endpoint: HttpsUrl
    keys: WebPushKeys


class ChannelConsent(Contract):
    """Marketing consent per channel; anything not granted is refused."""

    email: StrictBool = False
    push: StrictBool = False


class CustomerSignedUp(Contract):
    """A customer created an account."""

    customer_id: CustomerId
    email: EmailAddress
    name: PersonName
    locale: Locale
    time_zone: TimeZoneName
    birthday: Birthday | None = None
    consent: ChannelConsent = Field(default_factory=ChannelConsent)
    push_subscription: WebPushSubscription | None = None
    referrer_id: CustomerId | None = Field(
        default=None, description="The customer who referred this one, if any."
    )
    shop_id: ShopId = "default"

    @model_validator(mode="after")
    def _not_self_referred(self) -> Self:
        if self.referrer_id == self.customer_id:
            msg = "referrer_id must differ from customer_id"
            raise ValueError(msg)
        return self


class CustomerUpdated(Contract):
    """A customer changed their profile, consent or push subscription.

    Only the fields given (not null) change; at least one must be given. `consent`, when given,
    states both channels, so that granting one can never silently withdraw the other.
    """

    customer_id: CustomerId
    email: EmailAddress | None = None
    name: PersonName | None = None
    locale: Locale | None = None
    time_zone: TimeZoneName | None = None
    birthday: Birthday | None = None
    consent: ChannelConsent | None = None
    push_subscription: WebPushSubscription | None = None
    referrer_id: CustomerId | None = None
    shop_id: ShopId = "default"

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        changed = [
            name
            for name in type(self).model_fields
            if name not in {"customer_id", "shop_id"} and getattr(self, name) is not None
        ]
        if not changed:
            msg = "at least one field to update must be given"
            raise ValueError(msg)
        if self.consent is not None and self.consent.model_fields_set != {"email", "push"}:
            msg = "consent must state both email and push"
            raise ValueError(msg)
        if self.referrer_id == self.customer_id:
            msg = "referrer_id must differ from customer_id"
            raise ValueError(msg)
        return self
