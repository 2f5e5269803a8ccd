"""The public event contracts: what parse_event accepts, what it rejects and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter
from raw_events import (
    CUSTOMER,
    body,
    envelope,
    order_paid_data,
    rejection,
    signed_up_data,
    vnd_order_paid_data,
)

from shared.errors import Bug
from shared.events import (
    CURRENCY_MINOR_UNITS,
    TOPICS,
    LineItem,
    Money,
    OrderPaid,
    OrderTotals,
    PointsAdjusted,
    PointsEarned,
    PointsRedeemed,
    PointsReversed,
    encode_event,
    make_event,
    minor_units,
    parse_event,
    topic_for,
)
from shared.events.fields import EVENT_ID_MAX, EventId, bounded_id
from shared.events.shops import ShopCreated, ShopKind


def test_valid_order_paid_parses_into_typed_data() -> None:
    event = parse_event("shop.orders", body(envelope("order.paid", order_paid_data())))

    assert event.type == "order.paid"
    assert event.subject == CUSTOMER
    assert isinstance(event.data, OrderPaid)
    assert event.data.totals.total == Money(amount=Decimal("24.60"), currency="USD")
    assert event.data.items[0].quantity == 2
    assert event.time == datetime(2025, 3, 1, 3, 15, tzinfo=UTC)


def test_negative_money_is_rejected() -> None:
    data = order_paid_data()
    data["totals"] = {"total": {"amount": "-1.00", "currency": "USD"}}

    error = rejection("shop.orders", body(envelope("order.paid", data)))

    assert error.error_class == "SchemaViolation"
    assert "data.totals.total.amount" in error.reason


def test_money_as_a_json_number_is_rejected() -> None:
    data = order_paid_data()
    data["totals"] = {"total": {"amount": 24.6, "currency": "USD"}}

    error = rejection("shop.orders", body(envelope("order.paid", data)))

    assert "decimal string" in error.reason


def test_vnd_amount_with_decimals_is_rejected() -> None:
    error = rejection("shop.orders", body(envelope("order.paid", vnd_order_paid_data("1000.5"))))

    assert error.error_class == "SchemaViolation"
    assert "VND allows (0)" in error.reason


def test_usd_amount_with_three_decimals_is_rejected() -> None:
    data = order_paid_data()
    data["items"][0]["unit_price"] = "12.505"

    error = rejection("shop.orders", body(envelope("order.paid", data)))

    assert "items[0].unit_price has more decimal places than USD allows (2)" in error.reason


def test_trailing_zeros_within_the_minor_unit_are_accepted() -> None:
    event = parse_event("shop.orders", body(envelope("order.paid", vnd_order_paid_data("1000.00"))))

    assert event.data.totals.total.amount == Decimal(1000)


@pytest.mark.parametrize("currency", ["XYZ", "usd", "XAU", ""])
def test_unknown_currency_is_rejected(currency: str) -> None:
    data = order_paid_data(currency=currency)

    error = rejection("shop.orders", body(envelope("order.paid", data)))

    assert "data.currency: must be an active upper-case ISO 4217 currency code" in error.reason


def test_currency_table_knows_the_minor_units() -> None:
    expected = {"VND": 0, "USD": 2, "EUR": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3, "CLF": 4}
    assert {code: minor_units(code) for code in expected} == expected
    assert len(CURRENCY_MINOR_UNITS) > 150


@pytest.mark.parametrize("quantity", [0, -1])
def test_zero_or_negative_quantity_is_rejected(quantity: int) -> None:
    data = order_paid_data()
    data["items"][0]["quantity"] = quantity

    error = rejection("shop.orders", body(envelope("order.paid", data)))

    assert error.reason.endswith("data.items[0].quantity: Input should be greater than 0")


def test_totals_that_do_not_add_up_are_rejected() -> None:
    data = order_paid_data()
    data["totals"]["total"]["amount"] = "30.00"

    error = rejection("shop.orders", body(envelope("order.paid", data)))

    assert (
        "total must equal subtotal - discount + shipping (+ tax unless tax_included)"
        in error.reason
    )


@pytest.mark.parametrize("time", ["2025-03-01T10:15:00", "2025-03-01", 1740800100])
def test_time_without_a_zone_is_rejected(time: object) -> None:
    raw = body(envelope("order.paid", order_paid_data(), time=time))

    error = rejection("shop.orders", raw)

    assert error.error_class == "SchemaViolation"
    assert error.reason.startswith("1 invalid field(s): time:")


def test_bad_email_is_rejected_without_repeating_it() -> None:
    data = signed_up_data(email="lan.at.example.com")

    error = rejection("shop.customers", body(envelope("customer.signed_up", data)))

    assert "data.email: value is not a valid email address" in error.reason
    assert "lan.at.example.com" not in error.reason


def test_unknown_iana_time_zone_is_rejected() -> None:
    data = signed_up_data(time_zone="Asia/Saigon_City")

    error = rejection("shop.customers", body(envelope("customer.signed_up", data)))

    assert "data.time_zone: must be an IANA time zone name" in error.reason


def test_signed_up_customer_parses_with_defaults() -> None:
    raw = body(envelope("customer.signed_up", signed_up_data(consent={"push": True})))

    data = parse_event("shop.customers", raw).data

    assert (data.consent.email, data.consent.push, data.shop_id) == (False, True, "default")


def test_event_type_of_another_topic_is_rejected_as_schema_violation() -> None:
    raw = body(envelope("points.earned", order_paid_data()))

    error = rejection("shop.orders", raw)

    assert error.error_class == "SchemaViolation"
    assert error.reason == "type: unknown event type 'points.earned' for topic 'shop.orders'"


def test_non_json_body_is_rejected_as_invalid_json() -> None:
    error = rejection("shop.orders", b"order paid, trust me")

    assert error.error_class == "InvalidJson"


def test_unknown_topic_is_rejected() -> None:
    error = rejection("shop.returns", body(envelope("order.paid", order_paid_data())))

    assert error.error_class == "UnknownTopic"


def test_extra_envelope_attribute_is_rejected() -> None:
    raw = body(envelope("order.paid", order_paid_data(), colour="blue"))

    assert "colour: Extra inputs are not permitted" in rejection("shop.orders", raw).reason


def test_subject_other_than_the_customer_is_rejected() -> None:
    raw = body(envelope("order.paid", order_paid_data(), subject="c-7"))

    assert "subject must equal data.customer_id" in rejection("shop.orders", raw).reason


def test_reason_is_bounded_for_many_errors() -> None:
    data = order_paid_data(items=[{"sku": " ", "quantity": 0}] * 200)

    error = rejection("shop.orders", body(envelope("order.paid", data)))

    assert len(error.reason) <= 500


def test_points_deltas_follow_their_sign_rules() -> None:
    fields = {"entry_id": "e-1", "customer_id": CUSTOMER, "balance_after": 10, "reason": "r"}

    assert PointsEarned(delta=5, **fields).delta == 5
    with pytest.raises(ValueError, match="greater than 0"):
        PointsEarned(delta=-5, **fields)
    with pytest.raises(ValueError, match="less than 0"):
        PointsReversed(delta=5, **fields)
    assert PointsRedeemed(delta=5, **fields).delta == 5  # a cancelled redemption gives back
    with pytest.raises(ValueError, match="must change the balance"):
        PointsRedeemed(delta=0, **fields)
    with pytest.raises(ValueError, match="must change the balance"):
        PointsAdjusted(delta=0, **fields)


def test_store_credit_entries_name_their_currency_and_only_they_do() -> None:
    fields = {"entry_id": "e-1", "customer_id": CUSTOMER, "balance_after": 10, "reason": "r"}

    credit = PointsEarned(delta=500, balance_kind="store_credit", currency="USD", **fields)
    assert credit.currency == "USD"
    with pytest.raises(ValueError, match="currency is given for store credit entries"):
        PointsEarned(delta=500, balance_kind="store_credit", **fields)
    with pytest.raises(ValueError, match="currency is given for store credit entries"):
        PointsEarned(delta=5, currency="USD", **fields)


def test_every_catalogued_type_has_its_topic() -> None:
    pairs = {(topic, event_type) for topic, types in TOPICS.items() for event_type in types}

    assert {(topic_for(event_type), event_type) for _, event_type in pairs} == pairs
    with pytest.raises(Bug):
        topic_for("order.teleported")


def test_at_shop_travels_only_for_a_coalitions_account() -> None:
    alone = PointsEarned(entry_id="e", customer_id=CUSTOMER, delta=1, balance_after=1, reason="r")
    member = alone.model_copy(update={"shop_id": "c", "at_shop": "b"})

    def encoded(data: PointsEarned) -> bytes:
        return encode_event(
            make_event("points.earned", source="tests", subject=CUSTOMER, data=data, id="x")
        )

    assert b"at_shop" not in encoded(alone)
    parsed = parse_event("loyalty.points", encoded(member)).data
    assert (parsed.shop_id, parsed.at_shop) == ("c", "b")


def test_shop_created_names_its_kind_only_for_a_coalition() -> None:
    def encoded(kind: ShopKind) -> bytes:
        data = ShopCreated(
            shop_id="s", name="S", currency="VND", time_zone="UTC", locale="vi", kind=kind
        )
        return encode_event(make_event("shop.created", source="t", subject="s", data=data))

    assert b'"kind"' not in encoded("shop")
    assert parse_event("loyalty.shops", encoded("coalition")).data.kind == "coalition"
    assert parse_event("loyalty.shops", encoded("shop")).data.kind == "shop"


def test_make_event_refuses_data_of_another_type() -> None:
    data = PointsEarned(entry_id="e", customer_id=CUSTOMER, delta=1, balance_after=1, reason="r")

    with pytest.raises(Bug):
        make_event("order.paid", source="tests", subject=CUSTOMER, data=data)


# Round trip: any valid order.paid survives encode -> parse unchanged.

_IDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=24)
# Names take no control characters (categories Cc) and no surrogates (Cs).
_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=40).filter(
    lambda text: not text.isspace()
)
_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-3, minutes=-30))]
)


@st.composite
def orders_paid(draw: st.DrawFn) -> OrderPaid:
    currency = draw(st.sampled_from(sorted(CURRENCY_MINOR_UNITS)))
    places = minor_units(currency)

    def money(amount: Decimal) -> Money:
        return Money(amount=amount, currency=currency)

    items = draw(
        st.lists(
            st.builds(
                LineItem,
                sku=_IDS,
                name=_TEXT,
                category=_TEXT,
                quantity=st.integers(1, 50),
                unit_price=st.integers(0, 10**9).map(lambda minor: Decimal(minor).scaleb(-places)),
            ),
            min_size=1,
            max_size=5,
        )
    )
    subtotal = sum((item.unit_price * item.quantity for item in items), Decimal(0))
    discount = draw(st.integers(0, int(subtotal.scaleb(places))))
    shipping, tax = draw(st.integers(0, 10**6)), draw(st.integers(0, 10**6))
    tax_included = draw(st.booleans())
    parts = [Decimal(value).scaleb(-places) for value in (discount, shipping, tax)]
    total = subtotal - parts[0] + parts[1] + (0 if tax_included else parts[2])
    totals = OrderTotals(
        subtotal=money(subtotal),
        discount=money(parts[0]),
        shipping=money(parts[1]),
        tax=money(parts[2]),
        total=money(total),
        tax_included=tax_included,
    )
    return OrderPaid(
        order_id=draw(_IDS), customer_id=draw(_IDS), currency=currency, items=items, totals=totals
    )


@given(
    data=orders_paid(),
    event_id=_IDS,
    time=st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=_ZONES),
)
def test_order_paid_survives_encode_then_parse(
    data: OrderPaid, event_id: str, time: datetime
) -> None:
    event = make_event(
        "order.paid", source="/shops/1", subject=data.customer_id, data=data, id=event_id, time=time
    )

    parsed = parse_event("shop.orders", encode_event(event))

    assert parsed == event
    assert encode_event(parsed) == encode_event(event)


def test_unknown_event_type_on_a_one_type_topic_is_named() -> None:
    error = rejection("shop.carts", body(envelope("cart.recovered", {"cart_id": "k-1"})))

    assert error.reason == "type: unknown event type 'cart.recovered' for topic 'shop.carts'"


def test_customer_update_must_change_something() -> None:
    raw = body(envelope("customer.updated", {"customer_id": CUSTOMER, "name": None}))

    assert "at least one field to update" in rejection("shop.customers", raw).reason


def test_consent_update_states_both_channels() -> None:
    data = {"customer_id": CUSTOMER, "consent": {"email": True}}

    error = rejection("shop.customers", body(envelope("customer.updated", data)))

    assert "consent must state both email and push" in error.reason


def test_push_subscription_keys_must_have_their_sizes() -> None:
    subscription = {
        "endpoint": "https://push.example.net/send/abc",
        "keys": {"p256dh": "QUJD", "auth": "AAAAAAAAAAAAAAAAAAAAAA"},
    }
    data = signed_up_data(push_subscription=subscription)

    error = rejection("shop.customers", body(envelope("customer.signed_up", data)))

    assert error.reason.endswith(
        "data.push_subscription.keys.p256dh: must be base64url text of 65 bytes"
    )


# Derived ids join valid ids: printable characters, no surrounding whitespace.
derived_ids = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=600)


@given(derived_ids.filter(lambda t: t == t.strip() and t != ""))
def test_a_derived_id_fits_an_event_id_and_is_the_same_every_time(derived: str) -> None:
    bounded = bounded_id(derived)

    assert TypeAdapter(EventId).validate_python(bounded) == bounded
    assert bounded == bounded_id(derived)
    if len(derived) <= EVENT_ID_MAX:
        assert bounded == derived
    else:
        assert len(bounded) == EVENT_ID_MAX
        assert bounded_id(derived + "x") != bounded  # the same first characters, another id
