"""Staff mail without a network: which console events are mailed, how they render, and the
email's headers (no unsubscribe; a Message-ID from the event id)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest

from services.notify.adapters.channel import Envelope
from services.notify.adapters.email import build_email, staff_message_id
from services.notify.adapters.staff_mail import StaffMail
from services.notify.preview import STAFF_SAMPLES
from services.notify.rendering import Renderer
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings
from services.notify.staff_mail import StaffMailer, staff_mail_of
from shared.clock import FixedClock
from shared.errors import RejectedMessage
from shared.events.console import MessageTestRequested, StaffInvited

CONSOLE = "https://console.shop.example"
NOW = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)
SECRET = "k" * 43
SETTINGS = NotifySettings(
    mail_from="Loyalty <loyalty@shop.example>",
    storefront_url="https://shop.example",
    console_public_url=CONSOLE,
)


def invited(
    accept_url: str = f"{CONSOLE}/invitations/{SECRET}", locale: str = "vi"
) -> StaffInvited:
    return StaffInvited.model_validate(
        {
            "shop_id": "vn-fashion",
            "shop_name": "Thời trang Sen",
            "invitation_id": "inv_1",
            "email": "lan@mail.example",
            "role": "support",
            "locale": locale,
            "invited_by_name": "Trần Thị Mai",
            "accept_url": accept_url,
            "expires_at": NOW + timedelta(hours=72),
        }
    )


def requested(template: str = "welcome") -> MessageTestRequested:
    return MessageTestRequested(
        shop_id="vn-fashion",
        request_id="tst_1",
        template=template,
        locale="en",
        to_email="mai@mail.example",
        requested_by="u_1",
    )


def mailer() -> StaffMailer:
    shops = ShopMessageSettings.from_settings(SETTINGS, Renderer())
    return StaffMailer(SETTINGS, shops, channel=None)  # type: ignore[arg-type] # never sends


@pytest.mark.parametrize(
    "link",
    [
        f"https://phish.example/invitations/{SECRET}",
        f"{CONSOLE}.phish.example/invitations/{SECRET}",
        f"{CONSOLE}/invitations/../sign-in/{SECRET}",
        f"{CONSOLE}/invitations/{SECRET}?next=https://phish.example",
        f"{CONSOLE}/invitations/",
        f"http://console.shop.example/invitations/{SECRET}",
    ],
)
def test_an_invitation_whose_link_is_not_the_consoles_is_refused(link: str) -> None:
    with pytest.raises(RejectedMessage) as refused:
        staff_mail_of("e-1", invited(link), CONSOLE)
    assert refused.value.error_class == "ForeignInvitationLink"
    assert SECRET not in refused.value.reason


def test_a_test_of_a_template_notify_does_not_have_is_refused() -> None:
    with pytest.raises(RejectedMessage) as refused:
        staff_mail_of("e-1", requested("points_earned"), CONSOLE)
    assert refused.value.error_class == "UnknownTemplate"
    assert "points_earned" in refused.value.reason


def test_an_invitation_is_kept_with_its_link_for_the_invited_address() -> None:
    mail = staff_mail_of("e-1", invited(), CONSOLE)
    assert (mail.kind, mail.template, mail.locale, mail.to_email) == (
        "staff_invitation",
        "staff_invitation",
        "vi",
        "lan@mail.example",
    )
    assert mail.payload["accept_url"] == f"{CONSOLE}/invitations/{SECRET}"
    # `loyalty notify preview staff_invitation` renders with what a real invitation has.
    assert set(STAFF_SAMPLES["staff_invitation"]) == {*mail.payload, "console_url"}


@pytest.mark.parametrize(
    ("locale", "subject", "accept", "role"),
    [
        (
            "vi",
            "Trần Thị Mai mời bạn vào trang quản trị khách hàng thân thiết của Thời trang Sen",
            "Nhận lời mời",
            "Hỗ trợ",
        ),
        (
            "en",
            "Trần Thị Mai invited you to Thời trang Sen's loyalty console",
            "Accept the invitation",
            "Support",
        ),
    ],
)
def test_an_invitation_renders_in_its_language_with_the_link_and_the_role(
    locale: str, subject: str, accept: str, role: str
) -> None:
    mail = staff_mail_of("e-1", invited(locale=locale), CONSOLE)
    rendered = mailer().render(mail, NOW)
    link = f"{CONSOLE}/invitations/{SECRET}"
    assert rendered.language == locale
    assert rendered.subject == subject
    assert f"{accept}: {link}" in rendered.text
    assert role in rendered.text
    assert f'<a href="{link}"' in rendered.html
    assert f'<html lang="{locale}">' in rendered.html
    assert CONSOLE in rendered.text


def test_a_test_send_has_a_test_subject_and_the_templates_sample_data() -> None:
    mail = staff_mail_of("e-1", requested("points_expiring"), CONSOLE)
    rendered = mailer().render(mail, NOW)
    assert rendered.subject.startswith("[TEST] ")
    assert "Nguyễn Văn An" in rendered.text
    assert "300" in rendered.text  # the sample's expiring points


def test_staff_email_has_no_unsubscribe_and_a_message_id_of_its_event() -> None:
    mail = StaffMail("evt-1", "vn-fashion", "test_send", "welcome", "en", "mai@mail.example", {})
    envelope: Envelope = mailer().envelope(mail, NOW)
    email = build_email(envelope, mail_from=envelope.mail_from, clock=FixedClock(NOW), mailto=None)
    message = message_from_bytes(email.content, policy=policy.default)
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None
    assert message["Message-ID"] == staff_message_id("evt-1", "Loyalty <loyalty@shop.example>")
    assert message["Message-ID"] != staff_message_id("evt-2", "Loyalty <loyalty@shop.example>")
    assert message["Message-ID"].endswith("@shop.example>")
    assert email.recipient == "mai@mail.example"
