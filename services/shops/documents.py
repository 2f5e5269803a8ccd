"""Programme documents (TOML) of each kind, checked by the validator of the service that runs
them; errors name the setting, as the programme files' do."""

from __future__ import annotations

import tomllib
from datetime import time
from decimal import Decimal
from functools import cache
from typing import Any, Final

from pydantic import TypeAdapter, ValidationError

from services.earn.programme import parse_programme as parse_earn
from services.notify.rendering import Renderer
from services.notify.shop_messages import ShopMessages, read_shop_messages
from services.shops.refusals import InvalidDocument
from services.tiering.programme import parse_programme as parse_tiers
from shared.events.shops import ProgrammeKind, Reason
from shared.programme_files import ProgrammeError, programme_error

KINDS: tuple[ProgrammeKind, ...] = ("earn", "tiers", "messages")
_REASON = TypeAdapter(Reason)


# What a messages document is checked over: the settings it leaves out are the deployment's
# (notify's environment), which the shops service does not know; these stand in for them.
_MESSAGE_DEFAULTS: Final = ShopMessages(
    sender_name="",
    sender_address="loyalty@shop.example",
    storefront_url="https://shop.example",
    default_locale="vi-VN",
    default_currency="VND",
    quiet_hours_start=time(21, 0),
    quiet_hours_end=time(8, 0),
    frequency_cap=2,
    frequency_window_days=7,
)


@cache
def _renderer() -> Renderer:
    return Renderer()


def read_document(kind: str, text: str) -> dict[str, Any]:
    """The TOML's content; decimals stay Decimal so that money and rates are exact."""
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise programme_error(f"{kind} programme", [f"programme: not valid TOML: {exc}"]) from None


def validate_document(kind: str, text: str) -> object:
    """The programme a document describes, or ProgrammeError listing every problem, each
    naming its setting (`currencies.VND.per_amount: ...`)."""
    if kind not in KINDS:
        raise ProgrammeError(f"unknown programme kind {kind!r}: one of {', '.join(KINDS)}")
    raw = read_document(kind, text)
    if kind == "earn":
        return parse_earn(raw, source="draft")
    if kind == "tiers":
        return parse_tiers(raw, source="draft")
    # notify's own reading, template overrides rendered with sample data included.
    return read_shop_messages(
        text, defaults=_MESSAGE_DEFAULTS, renderer=_renderer(), what="messages programme draft"
    )


def check_document(kind: str, text: str) -> object:
    """validate_document, its problems as an InvalidDocument naming each setting
    (`earn.currencies.VND.per_amount`; the kind alone for the document as a whole)."""
    if kind not in KINDS:
        raise InvalidDocument(f"unknown kind {kind!r}", [("kind", f"one of {', '.join(KINDS)}")])
    try:
        return validate_document(kind, text)
    except ProgrammeError as exc:
        found = []
        for line in problems_in(exc):
            at, _, what = line.partition(": ")
            found.append((kind if at == "programme" else f"{kind}.{at}", what))
        raise InvalidDocument(str(exc), found) from None


def check_reason(reason: str) -> None:
    try:
        _REASON.validate_python(reason)
    except ValidationError:
        problem = "at most 1000 characters, without control characters"
        raise InvalidDocument("the reason is not valid", [("reason", problem)]) from None


def problems_in(error: ProgrammeError) -> list[str]:
    """The problems an error lists, one per setting (the first line says what was checked)."""
    lines = str(error).splitlines()
    listed = [line.strip() for line in lines[1:] if line.strip()]
    return listed or [lines[0]]


def check_earns_in(earn_text: str, currency: str, *, coalition_id: str) -> None:
    """A shop joins a coalition only if the coalition's earn programme has a rate for the
    shop's currency: its points move 1:1 into the coalition's currency."""
    earn = read_document("earn", earn_text)
    if currency not in earn.get("currencies", {}):
        raise InvalidDocument(
            f"the coalition {coalition_id!r} earns no points in {currency}",
            [
                (
                    "coalition_id",
                    f"the coalition's latest earn version has no currencies.{currency}: "
                    "publish one with that rate before the shop joins",
                )
            ],
        )
