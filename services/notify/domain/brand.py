"""A shop's brand in its emails: neutral colours by default, and the WCAG contrast between two."""

from __future__ import annotations

from typing import Final

# Without a [brand] section: a dark grey button with white text (15.9:1), near-black text.
PRIMARY: Final = "#1F2937"
ON_PRIMARY: Final = "#FFFFFF"
TEXT: Final = "#222222"
BACKGROUND: Final = "#FFFFFF"  # the emails' page colour, which the text colour is read on
# WCAG 2.2, success criterion 1.4.3 (AA), for normal text.
MIN_CONTRAST: Final = 4.5


def _luminance(colour: str) -> float:
    """The relative luminance of `#RRGGBB` (WCAG 2.2)."""
    channels = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """The contrast ratio of two `#RRGGBB` colours, from 1 (none) to 21 (black on white)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)
