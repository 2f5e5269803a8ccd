"""What the services' HTTP APIs accept as text and as times: text without control characters
(PostgreSQL cannot store NUL), and days and instants within years every store and computation
holds."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints
from pydantic.json_schema import WithJsonSchema

from shared.events.fields import CONTROLS, NAME_PATTERN

# The event contracts' control characters: never part of a name, a reason or an id.
_CONTROL: Final = re.compile(f"[{CONTROLS}]")
NO_CONTROLS: Final = "must not contain control characters (U+0000-U+001F, U+007F-U+009F)"
NO_CONTROLS_PATTERN: Final = f"^[^{CONTROLS}]*$"

# Far enough either way for any loyalty programme; near enough that a year, a review period or a
# local time zone added to a bound stays a valid date in Python and in PostgreSQL.
EARLIEST_DAY: Final = date(1970, 1, 1)
LATEST_DAY: Final = date(3000, 1, 1)
OUT_OF_RANGE: Final = f"must be from {EARLIEST_DAY} to {LATEST_DAY}"
# The same bounds as the OpenAPI documents state them: on the date as written (its own offset).
IN_RANGE_PATTERN: Final = r"^((19[7-9][0-9]|2[0-9]{3})-|3000-01-01)"
# Whole days, so that a generator draws from the pattern rather than filter most dates out.
DAY_PATTERN: Final = (
    r"^((19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])|3000-01-01)$"
)


def plain_text(text: str) -> str:
    """`text`, or ValueError when it holds a control character."""
    if _CONTROL.search(text):
        raise ValueError(NO_CONTROLS)
    return text


def day_in_range(day: date) -> date:
    """`day`, or ValueError when it is outside [EARLIEST_DAY, LATEST_DAY]."""
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise ValueError(OUT_OF_RANGE)
    return day


def instant_in_range(moment: datetime) -> datetime:
    """`moment`, or ValueError when its date as written (in its own offset) is outside the
    days of `day_in_range`: at most a day beyond them in UTC, which every store still holds."""
    day_in_range(moment.date())
    return moment


def refuse_controls(value: object) -> object:
    # Before the pattern, which says the same, so that the refusal says why in words.
    return plain_text(value) if isinstance(value, str) else value


# Text without control characters; NonBlankText also has a character other than white space.
PlainText = Annotated[
    str, StringConstraints(pattern=NO_CONTROLS_PATTERN), BeforeValidator(refuse_controls)
]
NonBlankText = Annotated[
    str, StringConstraints(pattern=NAME_PATTERN), BeforeValidator(refuse_controls)
]
Day = Annotated[
    date,
    AfterValidator(day_in_range),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN}),
]
Instant = Annotated[
    AwareDatetime,
    AfterValidator(instant_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": IN_RANGE_PATTERN}),
]
