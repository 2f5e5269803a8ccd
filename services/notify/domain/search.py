"""Customer search: Vietnamese letters folded to ASCII, as the database's fold_vi does."""

from __future__ import annotations

import unicodedata
from typing import Final

# The same map as fold_vi in migrations/0004_customer_search.sql; a test compares the two.
VIETNAMESE: Final = (
    "àáạảãâầấậẩẫăằắặẳẵèéẹẻẽêềếệểễìíịỉĩòóọỏõôồốộổỗơờớợởỡùúụủũưừứựửữỳýỵỷỹđ"
    "ÀÁẠẢÃÂẦẤẬẨẪĂẰẮẶẲẴÈÉẸẺẼÊỀẾỆỂỄÌÍỊỈĨÒÓỌỎÕÔỒỐỘỔỖƠỜỚỢỞỠÙÚỤỦŨƯỪỨỰỬỮỲÝỴỶỸĐ"
)
ASCII: Final = (
    "aaaaaaaaaaaaaaaaaeeeeeeeeeeeiiiiiooooooooooooooooouuuuuuuuuuuyyyyyd"
    "AAAAAAAAAAAAAAAAAEEEEEEEEEEEIIIIIOOOOOOOOOOOOOOOOOUUUUUUUUUUUYYYYYD"
)
_FOLD: Final = str.maketrans(VIETNAMESE, ASCII)

# A substring search needs this many folded characters: fewer would match most customers
# (and a trigram index cannot serve them).
MIN_SUBSTRING: Final = 3


def fold_vi(text: str) -> str:
    """`text` in NFC, Vietnamese letters without their marks, in lower case."""
    return unicodedata.normalize("NFC", text).translate(_FOLD).lower()


def like_pattern(query: str) -> str | None:
    """The LIKE pattern (escaped with backslash) of a substring search for `query`, or None
    when the folded query is too short for one."""
    folded = fold_vi(query.strip())
    if len(folded) < MIN_SUBSTRING:
        return None
    escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
