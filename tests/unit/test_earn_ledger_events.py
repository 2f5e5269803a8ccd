"""The loyalty.points event of every kind of ledger entry: serialised straight from the entry,
it must pass its event model and come out of it byte for byte, and carry the entry's values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from services.earn.adapters.ledger import EVENT_TYPES, entry_message
from services.earn.domain.ledger import NewEntry, WrittenEntry
from shared.events import encode_event, event_model, parse_event
from shared.holders import shop_scoped

# The sign each kind of entry carries; "restored" is a cancelled redemption's way back.
SIGNS = {
    "earned": 1,
    "reversed": -1,
    "redeemed": -1,
    "restored": 1,
    "expired": -1,
    "adjusted": 1,
}

identifiers = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}", fullmatch=True)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-3, minutes=-30))]
)
times = st.builds(
    lambda seconds, micros, zone: (
        datetime(2026, 1, 1, tzinfo=UTC).astimezone(zone)
        + timedelta(seconds=seconds, microseconds=micros)
    ),
    st.integers(0, 10**9),
    st.integers(0, 999_999),
    zones,
)


@st.composite
def written_entries(draw: st.DrawFn) -> WrittenEntry:
    kind = draw(st.sampled_from(sorted(SIGNS)))
    credit = kind in ("earned", "reversed", "adjusted") and draw(st.booleans())
    size = draw(st.integers(1, 10**12))
    sign = SIGNS[kind] if kind != "adjusted" else draw(st.sampled_from([1, -1]))
    entry = NewEntry(
        entry_id=draw(identifiers),
        customer_id=draw(identifiers),
        kind=kind,
        delta=sign * size,
        reason=draw(st.sampled_from(["order", "review", "campaign:spring", "manual"])),
        order_id=draw(st.none() | identifiers),
        source_event_id=draw(st.none() | identifiers),
        occurred_at=draw(times),
        balance_kind="store_credit" if credit else "points",
        currency=draw(st.sampled_from(["VND", "USD", "KWD"])) if credit else None,
        expires_at=draw(st.none() | times) if kind == "earned" and not credit else None,
        shop_id=draw(st.just("default") | identifiers),
        at_shop=draw(st.none() | identifiers),
    )
    return WrittenEntry(entry, balance_after=draw(st.integers(-(10**12), 10**12)))


@given(written_entries())
def test_an_entry_event_is_what_its_model_serialises(written: WrittenEntry) -> None:
    """Validated by the event model of its type, it serialises to the same bytes: valid, and
    in the contract's own form (field order, times, nulls)."""
    message = entry_message(written)
    model = event_model(EVENT_TYPES[written.entry.kind])

    assert encode_event(model.model_validate_json(message.value)) == message.value
    assert message.topic == "loyalty.points"
    assert message.key == written.entry.customer_id.encode()
    assert message.cause == written.entry.source_event_id


@given(written_entries())
def test_an_entry_event_parses_back_to_the_entry(written: WrittenEntry) -> None:
    entry = written.entry

    event = parse_event("loyalty.points", entry_message(written).value)

    assert event.type == EVENT_TYPES[entry.kind]
    assert event.id == entry.entry_id
    assert event.time == entry.occurred_at
    assert event.data.delta == entry.delta
    assert event.data.balance_after == written.balance_after
    assert event.data.currency == entry.currency
    assert event.data.expires_at == entry.expires_at
    assert event.data.shop_id == entry.shop_id
    assert event.data.at_shop == entry.at_shop


def test_an_entry_of_a_shops_own_account_names_no_at_shop() -> None:
    """Events of accounts outside coalitions stay byte for byte what they were."""
    entry = NewEntry(
        entry_id="e-1",
        customer_id="c-1",
        kind="earned",
        delta=5,
        reason="order.paid",
        order_id="o-1",
        source_event_id="p-1",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        shop_id="a",
    )
    value = entry_message(WrittenEntry(entry, balance_after=5)).value

    assert b"at_shop" not in value
    entry.at_shop, entry.shop_id = "a", "c"
    assert b'"shop_id":"c","at_shop":"a"' in entry_message(WrittenEntry(entry, 5)).value


def test_ids_unique_within_a_shop_are_unique_across_shops_and_the_default_shop_keeps_its() -> None:
    assert shop_scoped("default", "signup:c-1") == "signup:c-1"
    ids = {
        shop_scoped(shop, local)
        for shop, local in [
            ("default", "signup:a:b"),
            ("a", "signup:b"),
            ("a:b", "signup:b"),
            ("a", "b:signup:b"),
            ("shop:1:a", "signup:b"),
        ]
    }
    assert len(ids) == 5


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1),
       identifiers, identifiers)  # fmt: skip
def test_a_shop_scoped_id_fits_an_event_id(shop: str, a: str, b: str) -> None:
    scoped = shop_scoped(shop, a)
    assert len(scoped) <= 256
    assert (scoped == shop_scoped(shop, b)) == (a == b)
