"""Email addresses: the contract takes every valid address; notify sends only where mail goes."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from services.notify.adapters.email import deliverable
from shared.events import CustomerSignedUp
from shared.events.inputs.customers import EmailAddress

ADDRESS: TypeAdapter[str] = TypeAdapter(EmailAddress)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("an@example.test", "an@example.test"),
        ("an@shop.invalid", "an@shop.invalid"),
        ("an@Shop.LOCALHOST", "an@shop.localhost"),
        ("an@localhost", "an@localhost"),
        ("an@bücher.local", "an@bücher.local"),
        ("An@Mail.Example", "An@mail.example"),
        ("an@straße.de", "an@straße.de"),
    ],
)
def test_the_contract_takes_special_use_domains_as_format_email_does(given: str, kept: str) -> None:
    assert ADDRESS.validate_python(given) == kept


@pytest.mark.parametrize(
    "given", ["an", "an@", "@example.test", "an@x..test", "a n@x.test", "An <an@shop.example>"]
)
def test_the_contract_still_refuses_what_is_not_an_address(given: str) -> None:
    with pytest.raises(ValidationError, match="not a valid email address"):
        ADDRESS.validate_python(given)


def test_the_published_schema_says_format_email() -> None:
    schema = CustomerSignedUp.model_json_schema()["properties"]["email"]
    assert (schema["type"], schema["format"]) == ("string", "email")


@pytest.mark.parametrize(
    ("address", "reachable"),
    [
        ("an@mail.example", True),
        ("an@straße.de", True),
        ("an@example.test", False),
        ("an@shop.invalid", False),
        ("an@localhost", False),
    ],
)
def test_notify_sends_only_to_domains_that_receive_mail(address: str, reachable: bool) -> None:
    assert deliverable(address) is reachable
