"""The notify rules: quiet hours, the order of decisions, backoff, tokens, planning keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from services.notify.bootstrap import warn_about_links
from services.notify.domain import triggers
from services.notify.domain.rules import (
    Defer,
    QuietHours,
    Send,
    Situation,
    Suppress,
    decide,
    retry_delay,
)
from services.notify.domain.tokens import Unsubscribe, sign_unsubscribe, verify_unsubscribe
from services.notify.settings import NotifySettings
from shared.events import CartAbandoned, PointsExpiring, TierChanged

QUIET = QuietHours(time(21, 0), time(8, 0))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


SAIGON = ZoneInfo("Asia/Ho_Chi_Minh")


def situation(**changes: object) -> Situation:
    base: dict[str, object] = {
        "channel": "email",
        "category": "marketing",
        "known_customer": True,
        "consent": True,
        "unsubscribed": False,
        "has_address": True,
        "ordered_since": False,
        "sent_in_window": 0,
        "time_zone": "Asia/Ho_Chi_Minh",
    }
    return Situation(**{**base, **changes})  # type: ignore[arg-type]


NOON_SAIGON = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)


def decided(**changes: object) -> object:
    return decide(situation(**changes), now=NOON_SAIGON, quiet=QUIET, cap=2, zone_default="UTC")


def test_a_message_that_passes_every_rule_is_sent() -> None:
    assert decided() == Send()


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"ordered_since": True, "consent": False}, "ordered"),
        ({"consent": False}, "no_consent"),
        ({"consent": False, "unsubscribed": True}, "unsubscribed"),
        ({"known_customer": False}, "no_consent"),
        ({"has_address": False}, "invalid_address"),
        ({"sent_in_window": 2}, "frequency_cap"),
    ],
)
def test_suppression_reasons_in_order(changes: dict[str, object], reason: str) -> None:
    assert decided(**changes) == Suppress(reason)


def test_transactional_messages_are_exempt_from_the_cap() -> None:
    assert decided(category="transactional", sent_in_window=50) == Send()


def test_quiet_hours_defer_to_eight_in_the_morning_local_time() -> None:
    late = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)  # 22:00 in Saigon
    decision = decide(situation(), now=late, quiet=QUIET, cap=2, zone_default="UTC")
    assert decision == Defer(datetime(2026, 6, 2, 1, 0, tzinfo=UTC))


def test_after_midnight_the_morning_is_the_same_day() -> None:
    early = datetime(2026, 6, 1, 18, 30, tzinfo=UTC)  # 01:30 on 2 June in Saigon
    assert QUIET.next_end(early, SAIGON) == datetime(2026, 6, 2, 1, 0, tzinfo=UTC)


def test_equal_start_and_end_mean_no_quiet_hours() -> None:
    assert not QuietHours(time(0, 0), time(0, 0)).contains(time(3, 0))


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)))
def test_the_end_of_quiet_hours_is_never_quiet_and_never_in_the_past(moment: datetime) -> None:
    now = moment.replace(tzinfo=UTC)
    end = QUIET.next_end(now, SAIGON)
    assert end >= now
    assert not QUIET.contains(end.astimezone(SAIGON).time())
    assert end - now <= timedelta(days=1)


def test_retry_delay_doubles_and_is_capped() -> None:
    delays = [retry_delay(n, 60) for n in range(1, 12)]
    assert delays[:3] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert max(delays) == timedelta(hours=6)


def test_unsubscribe_tokens_verify_only_with_their_secret_and_unchanged() -> None:
    secret = "k" * 40
    token = sign_unsubscribe("shop-a", "c-1", "email", secret)
    request = verify_unsubscribe(token, secret)
    assert request is not None
    assert (request.shop_id, request.customer_id, request.channel) == ("shop-a", "c-1", "email")
    assert verify_unsubscribe(token, "x" * 40) is None
    other = sign_unsubscribe("shop-b", "c-1", "email", secret)
    assert verify_unsubscribe(token.split(".")[0] + "." + other.split(".")[1], secret) is None
    assert verify_unsubscribe("garbage", secret) is None


def test_an_unsubscribe_link_of_the_single_shop_release_still_works_for_shop_default() -> None:
    secret = "k" * 40
    body = b"email:c-1"  # what links signed before shops carried
    mac = hmac.new(secret.encode(), b"unsubscribe:" + body, hashlib.sha256).digest()
    token = f"{b64(body)}.{b64(mac)}"
    assert verify_unsubscribe(token, secret) == Unsubscribe("default", "c-1", "email")


def test_cart_reminders_follow_the_steps_and_share_the_customers_cancel_key() -> None:
    cart = CartAbandoned.model_validate(
        {
            "cart_id": "cart-1",
            "customer_id": "c-1",
            "currency": "VND",
            "items": [{"sku": "A", "name": "Tea", "quantity": 1, "unit_price": "100000"}],
            "total": {"amount": "100000", "currency": "VND"},
            "cart_url": "https://shop.example/cart/1",
        }
    )
    at = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
    plans = triggers.cart_reminders(cart, at=at, steps=[(60, None), (1440, "C10")], has_push=True)
    assert [(p.dedup_key, p.due_at - at) for p in plans] == [
        ("cart:cart-1:1:email", timedelta(hours=1)),
        ("cart:cart-1:1:push", timedelta(hours=1)),
        ("cart:cart-1:2:email", timedelta(hours=24)),
        ("cart:cart-1:2:push", timedelta(hours=24)),
    ]
    assert {p.cancel_key for p in plans} == {"cart:c-1"}
    assert [p.payload["coupon"] for p in plans] == [None, None, "C10", "C10"]
    assert {p.category for p in plans} == {"marketing"}


def test_settings_refuse_unordered_steps_and_explain_a_missing_secret() -> None:
    with pytest.raises(ValueError, match="increasing"):
        NotifySettings(cart_reminder_steps=[{"after_minutes": 60}, {"after_minutes": 30}])
    with pytest.raises(ValueError, match="32-byte"):
        NotifySettings(vapid_private_key="short")
    with pytest.raises(ValueError, match="mail_from must be an address"):
        NotifySettings(mail_from="Loyalty")
    with pytest.raises(ValueError, match="local part must be ASCII"):
        NotifySettings(mail_from="Trà <trà@shop.example>")
    with pytest.raises(ValueError, match="LOYALTY_UNSUBSCRIBE_SECRET must be set"):
        NotifySettings().require_secrets()


def test_settings_refuse_an_smtp_login_in_clear_unless_the_network_is_said_to_be_trusted() -> None:
    password = SecretStr("s3cret")
    with pytest.raises(ValueError, match="password in clear") as refused:
        NotifySettings(smtp_user="shop", smtp_password=password)
    assert "s3cret" not in str(refused.value)

    for tls in ("starttls", "tls"):
        settings = NotifySettings(smtp_user="shop", smtp_password=password, smtp_tls=tls)
        assert settings.smtp_user == "shop"
    allowed = NotifySettings(
        smtp_user="shop", smtp_password=password, smtp_allow_plaintext_auth=True
    )
    assert allowed.smtp_tls == "none"


def test_start_up_warns_when_unsubscribe_links_are_not_https_and_shop_links_are_absolute() -> None:
    with structlog.testing.capture_logs() as logs:
        warn_about_links(NotifySettings(public_base_url="http://127.0.0.1:8003"))
        warn_about_links(NotifySettings(public_base_url="https://notify.shop.example"))
    assert [entry["event"] for entry in logs] == ["unsubscribe_url_not_https"]
    assert logs[0]["log_level"] == "warning"
    assert NotifySettings(storefront_url="https://shop.example/").storefront_url == (
        "https://shop.example"
    )
    with pytest.raises(ValueError, match="storefront_url"):
        NotifySettings(storefront_url="shop.example")


def test_a_coalition_accounts_messages_are_planned_for_the_member_shop_where_it_happened() -> None:
    at = datetime(2031, 10, 5, 3, 0, tzinfo=UTC)
    change = {
        "customer_id": "c-1",
        "from_tier": None,
        "to_tier": "gold",
        "direction": "up",
        "reason": "qualified",
        "qualifying_amount": "5000000",
        "basis": "spend",
        "currency": "VND",
        "effective_at": at.isoformat(),
    }
    at_member = TierChanged.model_validate({**change, "shop_id": "pho-cho", "at_shop": "sen"})
    own = TierChanged.model_validate({**change, "shop_id": "sen"})
    expiring = PointsExpiring.model_validate(
        {
            "shop_id": "pho-cho",
            "at_shop": "lotus",
            "customer_id": "c-1",
            "points": 300,
            "expires_at": (at + timedelta(days=14)).isoformat(),
            "balance": 2000,
        }
    )

    planned = [
        *triggers.tier_changed("e-1", at_member, at=at, has_push=False),
        *triggers.tier_changed("e-2", own, at=at, has_push=False),
        *triggers.points_expiring("e-3", expiring, at=at, has_push=False),
    ]

    assert [(p.shop_id, p.trigger) for p in planned] == [
        ("sen", "tier.upgraded"),
        ("sen", "tier.upgraded"),
        ("lotus", "points.expiring"),
    ]
