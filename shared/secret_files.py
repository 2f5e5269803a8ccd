"""Secret settings read from files named by <PREFIX><NAME>_FILE, as platforms mount secrets."""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsError

FILE_SUFFIX = "_FILE"


def is_secret(field: FieldInfo) -> bool:
    """True when the field holds a SecretStr (optional or not)."""
    annotation = field.annotation
    if annotation is SecretStr:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return SecretStr in typing.get_args(annotation)
    return False


def read_secret_file(path: Path, variable: str) -> str:
    """The file's text without one trailing newline (as `echo secret > file` leaves)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SettingsError(f"{variable}={path}: the file cannot be read ({reason})") from None
    if text.endswith("\r\n"):
        return text[:-2]
    return text.removesuffix("\n")


class SecretFilesSource(PydanticBaseSettingsSource):
    """For every SecretStr setting, <PREFIX><NAME>_FILE names a file holding its value.

    The value given both ways is refused: which one wins would be a guess.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], environ: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(settings_cls)
        self._prefix = str(settings_cls.model_config.get("env_prefix", "")).upper()
        source = os.environ if environ is None else environ
        # Settings are matched case-insensitively, as the environment source does by default.
        self._environ = {name.upper(): (name, value) for name, value in source.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"{self._prefix}{field_name.upper()}"
        named = self._environ.get(variable + FILE_SUFFIX)
        if named is None or not is_secret(field):
            return None, field_name, False
        file_variable, path = named
        if variable in self._environ:
            given = self._environ[variable][0]
            raise SettingsError(f"{given} and {file_variable} are both set: set only one of them")
        return read_secret_file(Path(path), file_variable), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values
