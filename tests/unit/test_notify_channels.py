"""Channel details without a network: the email's headers and how failures are classified."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from uuid import UUID

import aiosmtplib
import pytest

from services.notify.adapters.channel import (
    ChannelUnavailable,
    Envelope,
    PermanentDelivery,
    SubscriptionGone,
    TransientDelivery,
)
from services.notify.adapters.email import _classify, build_email, message_id_for
from services.notify.adapters.push import _check, push_topic
from services.notify.rendering import Rendered
from shared.clock import FixedClock

MESSAGE = UUID("0b8f0c1e-5d0a-4c5e-9a53-3f0e6f1d2a47")


def envelope(**changes: object) -> Envelope:
    rendered = Rendered("vi", "Chào An", "Xin chào An", "<p>Xin chào An</p>", "t", "b")
    base: dict[str, object] = {
        "message_id": message_id_for(MESSAGE, "Shop <loyalty@shop.example>"),
        "shop_id": "default",
        "customer_id": "c-1",
        "trigger": "cart.abandoned",
        "category": "marketing",
        "rendered": rendered,
        "email": "an@mail.example",
        "name": "An",
        "push_subscription": None,
        "unsubscribe_url": "https://notify.example/unsubscribe?token=t",
        "link": "https://shop.example/cart/1",
        "mail_from": "Shop <loyalty@shop.example>",
    }
    return Envelope(**{**base, **changes})  # type: ignore[arg-type]


def sent(envelope: Envelope, mail_from: str = "Shop <loyalty@shop.example>") -> EmailMessage:
    """The message as a mail client reads the bytes sent."""
    clock = FixedClock(datetime(2031, 1, 2, 3, 4, tzinfo=UTC))
    email = build_email(envelope, mail_from=mail_from, clock=clock, mailto="u@shop.example")
    message = message_from_bytes(email.content, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_email_has_both_parts_a_stable_message_id_and_one_click_unsubscribe() -> None:
    message = sent(envelope())
    assert message["Message-ID"] == f"<notify-{MESSAGE}@shop.example>"
    assert message["From"] == "Shop <loyalty@shop.example>"
    assert message["To"] == "An <an@mail.example>"
    assert message["Subject"] == "Chào An"
    assert message["Content-Language"] == "vi"
    assert message["List-Unsubscribe"] == (
        "<https://notify.example/unsubscribe?token=t>, <mailto:u@shop.example?subject=unsubscribe>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Date"] == "Thu, 02 Jan 2031 03:04:00 +0000"
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message.get_body(("plain",)).get_content() == "Xin chào An"  # type: ignore[union-attr]
    assert message.get_body(("html",)).get_content() == "<p>Xin chào An</p>"  # type: ignore[union-attr]


def test_names_outside_ascii_are_encoded_and_read_back() -> None:
    message = sent(envelope(name="Nguyễn Văn An"), mail_from="Cửa hàng Trà <shop@tra.example>")
    assert message["To"] == "Nguyễn Văn An <an@mail.example>"
    assert message["From"] == "Cửa hàng Trà <shop@tra.example>"


def test_a_line_break_in_a_name_or_subject_cannot_add_a_header() -> None:
    rendered = Rendered("vi", "Chào\r\nBcc: x@evil.example", "t", "<p>t</p>", "t", "b")
    message = sent(envelope(name="An\r\nBcc: y@evil.example", rendered=rendered))
    assert message["Bcc"] is None
    assert message["To"].addresses[0].display_name == "An Bcc: y@evil.example"
    assert message["Subject"] == "Chào Bcc: x@evil.example"


@pytest.mark.parametrize(
    ("address", "ascii_form"),
    [
        ("an@bücher.example", "an@xn--bcher-kva.example"),
        ("an@straße.de", "an@xn--strae-oqa.de"),  # IDNA 2008: not strasse.de
        ("an@Bücher.Example", "an@xn--bcher-kva.example"),  # UTS 46 maps case
    ],
)
def test_an_internationalised_domain_is_sent_in_its_ascii_form(
    address: str, ascii_form: str
) -> None:
    clock = FixedClock(datetime(2031, 1, 1, tzinfo=UTC))
    email = build_email(envelope(email=address), mail_from="a@b.example", clock=clock, mailto=None)
    assert email.recipient == ascii_form
    assert email.sender == "a@b.example"
    read = message_from_bytes(email.content, policy=policy.default)
    assert read["To"] == f"An <{ascii_form}>"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        (None, "no email address"),
        ("an@mail.example\r\nBcc: y@evil.example", "a line break in the address"),
        ("ân@mail.example", "local part is not ASCII"),
    ],
)
def test_an_address_that_cannot_be_sent_to_is_a_permanent_failure(
    address: str | None, why: str
) -> None:
    with pytest.raises(PermanentDelivery, match=why):
        build_email(
            envelope(email=address),
            mail_from="a@b.example",
            clock=FixedClock(datetime(2031, 1, 1, tzinfo=UTC)),
            mailto=None,
        )


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no", "x")]),
            PermanentDelivery,
        ),
        (
            aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(452, "full", "x")]),
            TransientDelivery,
        ),
        (aiosmtplib.SMTPResponseException(554, "rejected"), PermanentDelivery),
        (aiosmtplib.SMTPResponseException(421, "busy"), TransientDelivery),
        (aiosmtplib.SMTPServerDisconnected("gone"), TransientDelivery),
    ],
)
def test_smtp_failures_are_permanent_only_for_5xx_about_the_message(
    error: aiosmtplib.SMTPException, kind: type[Exception]
) -> None:
    classified = _classify(error)
    assert type(classified) is kind
    assert "x" not in str(classified).split()  # never the recipient


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, SubscriptionGone),
        (410, SubscriptionGone),
        (400, PermanentDelivery),
        (413, PermanentDelivery),
        (403, TransientDelivery),
        (429, TransientDelivery),
        (503, TransientDelivery),
    ],
)
def test_push_service_answers_map_to_outcomes(status: int, kind: type[Exception]) -> None:
    with pytest.raises(kind):
        _check(status)


def test_push_accepts_201_and_topics_are_short_url_safe_names() -> None:
    _check(201)
    assert push_topic("cart.abandoned") == "cart-abandoned"
    assert len(push_topic("x" * 80)) == 32


def _caused(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            aiosmtplib.SMTPAuthenticationError(535, "5.7.8 x credentials invalid"),
            "SMTP server refused the login: 535",
        ),
        (  # after STARTTLS: the TLS error as it is
            ssl.SSLCertVerificationError(1, "certificate verify failed"),
            "SMTP server certificate not trusted: certificate verify failed",
        ),
        (  # implicit TLS: the TLS error is the cause of aiosmtplib's connect error
            _caused(
                aiosmtplib.SMTPConnectError("Error connecting to x on port 465"),
                ssl.SSLCertVerificationError(1, "certificate verify failed"),
            ),
            "SMTP server certificate not trusted: certificate verify failed",
        ),
        (
            _caused(aiosmtplib.SMTPConnectError("Error connecting"), ssl.SSLError(1, "x")),
            "SMTP TLS handshake failed: SSLError",
        ),
        (
            aiosmtplib.SMTPConnectError("Error connecting to x on port 25"),
            "SMTP server unreachable: SMTPConnectError",
        ),
        (ConnectionRefusedError(111, "refused"), "SMTP server unreachable: ConnectionRefusedError"),
        (
            aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server."),
            "SMTP server does not offer STARTTLS",
        ),
        (
            aiosmtplib.SMTPException("The SMTP AUTH extension is not supported by this server."),
            "SMTP server does not offer AUTH on this connection",
        ),
    ],
)
def test_smtp_failures_no_message_is_to_blame_for_leave_the_channel_unavailable(
    error: aiosmtplib.SMTPException | OSError, reason: str
) -> None:
    classified = _classify(error)

    assert type(classified) is ChannelUnavailable
    assert str(classified) == reason
