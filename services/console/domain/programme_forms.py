"""The programme forms: which settings of a document are form fields, a form's values applied
to the document (tomlkit: comments and order survive, one value is one line), and a shops
API error's location mapped back to the field it names.

A field's name is its path in the document as the shops API names a setting in a 422
(`currencies.VND.per_amount`, `tiers[2].enter.VND`, the kind's prefix stripped), so an error
finds its input without a table. Settings outside the form sections, and lists of values, are
edited in the TOML editor.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

import tomlkit
from tomlkit.exceptions import TOMLKitError

# Earning rates, rewards and expiry; tiers and their window: the settings a marketer changes.
FORM_SECTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "earn": ("currencies", "rewards", "expiry"),
    "tiers": ("basis", "window", "tiers"),
}
_STEP: Final = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

FieldKind = Literal["integer", "decimal", "text", "boolean"]


def N_(message: str) -> str:  # noqa: N802 (gettext's name for "translated later")
    """Marks a message for the catalogs; the page translates it into the reader's language."""
    return message


WHOLE_NUMBER: Final = N_("a whole number is needed")
NUMBER: Final = N_("a number is needed")
TRUE_OR_FALSE: Final = N_("true or false is needed")


@dataclass(frozen=True)
class FieldSpec:
    """One form field: its path (the input's name), its section, its value as text, its kind."""

    path: str
    section: str
    value: str
    kind: FieldKind


@dataclass(frozen=True)
class FieldError:
    """A value the form refused before asking the shops API, or an API error of that field."""

    path: str
    message: str


class FormRefused(Exception):
    """The document or a value could not be read; `errors` say which fields."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.path}: {e.message}" for e in errors))
        self.errors = errors


def form_fields(kind: str, text: str) -> list[FieldSpec]:
    """The form fields of a document of this kind (none for a kind edited as TOML only, or a
    document that is not TOML)."""
    try:
        document = tomlkit.parse(text).unwrap()
    except TOMLKitError:
        return []
    found: list[FieldSpec] = []
    for section in FORM_SECTIONS.get(kind, ()):
        if section in document:
            found += [
                FieldSpec(path, section, _text(value), _kind(value))
                for path, value in _leaves(section, document[section])
            ]
    return found


def _leaves(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _leaves(f"{path}.{key}", inner)
    elif isinstance(value, list):
        # A list of tables (rewards, tiers) has fields; a list of values is the editor's.
        if all(isinstance(item, dict) for item in value):
            for index, item in enumerate(value):
                yield from _leaves(f"{path}[{index}]", item)
    elif isinstance(value, bool | int | float | str):
        yield path, value


def _kind(value: Any) -> FieldKind:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "decimal"
    return "text"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def apply_form(kind: str, text: str, values: Mapping[str, str]) -> str:
    """The document with the form's values set at their paths; a value equal to the
    document's is left alone, so an unchanged form gives the document back byte for byte."""
    document = tomlkit.parse(text)
    fields = {f.path: f for f in form_fields(kind, text)}
    errors: list[FieldError] = []
    for path, given in values.items():
        field = fields.get(path)
        if field is None or given.strip() == field.value:
            continue
        try:
            _set(document, path, _typed(field.kind, given.strip()))
        except ValueError as refused:
            errors.append(FieldError(path, str(refused)))
    if errors:
        raise FormRefused(errors)
    return tomlkit.dumps(document)


def _typed(kind: FieldKind, given: str) -> Any:
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", given):
            raise ValueError(WHOLE_NUMBER)
        return int(given)
    if kind == "decimal":
        try:
            number = Decimal(given)
        except InvalidOperation:
            raise ValueError(NUMBER) from None
        if not number.is_finite():
            raise ValueError(NUMBER)
        return float(number)
    if kind == "boolean":
        if given not in ("true", "false"):
            raise ValueError(TRUE_OR_FALSE)
        return given == "true"
    return given


def _set(document: Any, path: str, value: Any) -> None:
    steps = [name if index is None else int(index) for name, index in _steps(path)]
    target = document
    for step in steps[:-1]:
        target = target[step]
    target[steps[-1]] = value


def _steps(path: str) -> Iterator[tuple[str, str | None]]:
    for match in _STEP.finditer(path):
        name, index = match.groups()
        yield (name, None) if index is None else ("", index)


def field_of(kind: str, location: str) -> str:
    """A shops API error's location as a field's path: `earn.currencies.VND.per_amount` is
    `currencies.VND.per_amount`; a location naming no setting (the document) is ''."""
    prefix = f"{kind}."
    if location.startswith(prefix):
        return location[len(prefix) :]
    return "" if location in (kind, "body.toml", "toml") else location
