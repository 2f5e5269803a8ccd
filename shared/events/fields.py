"""The base contract model and the constrained field types that every event shares."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Final, cast
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StrictInt,
    StringConstraints,
)
from pydantic_core import core_schema

__all__ = [
    "CONTROLS",
    "EVENT_ID_MAX",
    "EVENT_TIME_END",
    "EVENT_TIME_START",
    "Birthday",
    "Contract",
    "CustomerId",
    "EventId",
    "EventTime",
    "HttpsUrl",
    "Identifier",
    "Label",
    "Locale",
    "LongText",
    "PositiveCount",
    "ShopId",
    "Slug",
    "SourceUri",
    "TimeZoneName",
    "Timestamp",
    "WebUrl",
    "bounded_id",
]


# Control characters (C0, DEL and C1): PostgreSQL cannot store U+0000 in text, and the others
# forge lines in logs and mails. Names and ids take none; free text takes tab and line breaks.
CONTROLS: Final = r"\x00-\x1f\x7f-\x9f"
_TEXT_CONTROLS: Final = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"


def _not_blank(controls: str) -> str:
    """A pattern: no character of `controls`, and at least one that is not white space."""
    return rf"^[^{controls}]*[^\s{controls}][^{controls}]*$"


NAME_PATTERN: Final = _not_blank(CONTROLS)
TEXT_PATTERN: Final = _not_blank(_TEXT_CONTROLS)


class Contract(BaseModel):
    """Base of every contract model: immutable, and an unknown field is an error, not a surprise."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# Ids travel as Kafka keys, URL path segments and log fields: printable ASCII without spaces keeps
# them safe in all three.
Identifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[!-~]+$"),
    Field(description="Printable ASCII without spaces, 1 to 128 characters."),
]
CustomerId = Identifier
ShopId = Identifier

EVENT_ID_MAX: Final = 256

EventId = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=EVENT_ID_MAX,
        pattern=rf"^[^\s{CONTROLS}](?:[^{CONTROLS}]*[^\s{CONTROLS}])?$",
    ),
    Field(
        description="Unique per source; the idempotency key. No surrounding white space and no"
        " control characters."
    ),
]


def bounded_id(derived: str) -> str:
    """An id derived from others (a prefix and an input's id, say), made to fit EventId: as it
    is up to 256 characters, else its first 191 characters, "~" and the SHA-256 of the whole.
    The same inputs always give the same id, so replays stay idempotent."""
    if len(derived) <= EVENT_ID_MAX:
        return derived
    digest = hashlib.sha256(derived.encode()).hexdigest()
    return f"{derived[: EVENT_ID_MAX - len(digest) - 1]}~{digest}"


# The characters RFC 3986 allows in a URI-reference; CloudEvents sources may be absolute URIs,
# URNs or relative paths such as "/shops/42".
SourceUri = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=2048, pattern=r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$"
    ),
    Field(description="A non-empty URI-reference (RFC 3986)."),
]

Label = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=NAME_PATTERN),
    Field(description="A name or short text, 1 to 255 characters, not blank, no control codes."),
]
LongText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=1000, pattern=TEXT_PATTERN),
    Field(
        description="Free text, 1 to 1000 characters, not blank; of the control characters only"
        " tab, line feed and carriage return."
    ),
]
Slug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$"),
    Field(description="Lower-case machine name such as 'facebook' or 'cart.abandoned'."),
]

PositiveCount = Annotated[StrictInt, Field(gt=0, le=1_000_000)]


def _not_a_number(value: object) -> object:
    # Lax parsing would read a number as a Unix timestamp: the contract says RFC 3339 text.
    if isinstance(value, int | float):
        msg = "must be an RFC 3339 string, not a number"
        raise ValueError(msg)  # noqa: TRY004 - pydantic turns ValueError into a validation error
    return value


class _TextOnlyInJson:
    """Annotated marker: in JSON a date or time must be a string (strict, checked in pydantic-core);
    Python callers may pass the object itself or its text, but never a number."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        lax = handler(source)
        if lax["type"] not in {"date", "datetime"}:
            msg = f"{cls.__name__} applies to date and datetime, not {lax['type']}"
            raise TypeError(msg)
        strict = cast(core_schema.CoreSchema, {**lax, "strict": True})
        return core_schema.json_or_python_schema(
            json_schema=strict,
            python_schema=core_schema.no_info_before_validator_function(_not_a_number, lax),
            serialization=lax.get("serialization"),
        )


Timestamp = Annotated[
    AwareDatetime,
    _TextOnlyInJson,
    Field(description="RFC 3339 date-time with a zone offset, such as 2025-01-31T09:30:00Z."),
]

# Every event happens in this window (UTC). Its end is far enough for any programme (return
# windows, expiry, tiering's rolling years and tier end dates, analytics periods are all years,
# not millennia) and near enough that nothing computed from an event time leaves the range of
# Python's datetime (year 9999) or PostgreSQL's timestamptz.
EVENT_TIME_START: Final = datetime(1970, 1, 1, tzinfo=UTC)
EVENT_TIME_END: Final = datetime(2200, 1, 1, tzinfo=UTC)

EventTime = Annotated[
    AwareDatetime,
    Field(ge=EVENT_TIME_START, lt=EVENT_TIME_END),
    _TextOnlyInJson,
    Field(
        description="RFC 3339 date-time with a zone offset, such as 2025-01-31T09:30:00Z; from"
        " 1970-01-01T00:00:00Z (included) to 2200-01-01T00:00:00Z (excluded) in UTC.",
        # The schema can check the year as written; the service checks the instant in UTC.
        json_schema_extra={"pattern": r"^(?:19[7-9][0-9]|2[01][0-9]{2})-"},
    ),
]

Birthday = Annotated[
    date,
    Field(ge=date(1900, 1, 1), lt=date(2200, 1, 1), description="Calendar date, YYYY-MM-DD."),
    _TextOnlyInJson,
]

# BCP 47 (RFC 5646) language tags, without the grandfathered irregular ones: language, optional
# script, optional region, variants, extensions and a private-use part: "vi-VN", "zh-Hant-TW".
_BCP47: Final = (
    r"^[A-Za-z]{2,3}(?:-[A-Za-z]{4})?(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"
    r"(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*"
    r"(?:-[A-WY-Za-wy-z0-9](?:-[A-Za-z0-9]{2,8})+)*"
    r"(?:-[Xx](?:-[A-Za-z0-9]{1,8})+)?$"
)
Locale = Annotated[
    str,
    StringConstraints(max_length=35, pattern=_BCP47),
    Field(description="BCP 47 language tag such as 'vi-VN' or 'en-US'."),
]


@cache
def _time_zones() -> frozenset[str]:
    # Read once: listing the tz database walks the file system.
    return frozenset(available_timezones())


def _known_time_zone(name: str) -> str:
    if name not in _time_zones():
        msg = "must be an IANA time zone name such as 'Asia/Ho_Chi_Minh'"
        raise ValueError(msg)
    return name


TimeZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_known_time_zone),
    Field(description="IANA time zone name such as 'Asia/Ho_Chi_Minh'."),
]


def _url_check(schemes: frozenset[str]) -> AfterValidator:
    def check(url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in schemes or not parts.hostname:
            msg = f"must be an absolute {' or '.join(sorted(schemes))} URL with a host"
            raise ValueError(msg)
        return url

    return AfterValidator(check)


HttpsUrl = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=rf"^https://[^\s{CONTROLS}]+$"),
    _url_check(frozenset({"https"})),
    Field(description="Absolute https URL."),
]
WebUrl = Annotated[
    str,
    StringConstraints(max_length=2048, pattern=rf"^https?://[^\s{CONTROLS}]+$"),
    _url_check(frozenset({"http", "https"})),
    Field(description="Absolute http or https URL."),
]
