"""Reading a service's programme file (TOML) with errors that name the setting and the problem.

A problem reads like `campaigns[2].ends_at: must be after starts_at`: the path of the setting
in the file, then what is wrong with it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ProgrammeError(ValueError):
    """The programme file is missing, is not TOML, or breaks a rule; the message says where."""


def read_toml(path: Path) -> dict[str, Any]:
    """The file's content; decimals stay Decimal so that money and rates are exact."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProgrammeError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ProgrammeError(f"{path}: not valid TOML: {exc}") from None


def validate(
    model: type[M],
    raw: dict[str, Any],
    *,
    what: str,
    checks: Callable[[M], list[str]] = lambda _: [],
) -> M:
    """`model` from the file's content, or one ProgrammeError listing every problem: those of
    each setting, then those `checks` finds across settings."""
    try:
        valid = model.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{location(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise programme_error(what, problems) from None
    problems = checks(valid)
    if problems:
        raise programme_error(what, problems)
    return valid


def location(loc: Sequence[int | str]) -> str:
    """`("tiers", 2, "enter")` reads `tiers[2].enter`."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
    return text or "programme"


def programme_error(what: str, problems: Sequence[str]) -> ProgrammeError:
    listed = "\n".join(f"  {p}" for p in problems)
    return ProgrammeError(f"{what} is not valid:\n{listed}")
