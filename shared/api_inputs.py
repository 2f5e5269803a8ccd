"""What the services' HTTP APIs accept as text and as times: text without control characters
(PostgreSQL cannot store NUL), and days and instants within years every store and computation
holds."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, AwareDatetime

from shared.events.fields import CONTROLS

# The event contracts' control characters: never part of a name, a reason or an id.
_CONTROL: Final = re.compile(f"[{CONTROLS}]")
NO_CONTROLS: Final = "must not contain control characters (U+0000-U+001F, U+007F-U+009F)"

# Far enough either way for any loyalty programme; near enough that a year, a review period or a
# local time zone added to a bound stays a valid date in Python and in PostgreSQL.
EARLIEST_DAY: Final = date(1970, 1, 1)
LATEST_DAY: Final = date(3000, 1, 1)
_EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST: Final = datetime(3000, 1, 1, tzinfo=UTC)
OUT_OF_RANGE: Final = f"must be from {EARLIEST_DAY} to {LATEST_DAY}"


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
    """`moment`, or ValueError when it is outside the days of `day_in_range`."""
    if not _EARLIEST <= moment <= _LATEST:
        raise ValueError(OUT_OF_RANGE)
    return moment


PlainText = Annotated[str, AfterValidator(plain_text)]
Day = Annotated[date, AfterValidator(day_in_range)]
Instant = Annotated[AwareDatetime, AfterValidator(instant_in_range)]
