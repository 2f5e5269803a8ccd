"""The pages' Jinja2 environment: autoescaped, translated (vi/en from the .po catalogs, compiled
in memory at start), with the money, points, percent, datetime and date filters of formats.py."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from starlette.requests import Request
from starlette.responses import HTMLResponse

from services.console.formats import DEFAULT_LANGUAGE, LANGUAGES, Formats

TEMPLATES: Final = Path(__file__).parent / "templates"
LOCALES: Final = Path(__file__).parent / "locales"


def catalog(language: str) -> Translations:
    """The language's messages from its .po file; English is the msgids themselves."""
    with (LOCALES / f"{language}.po").open("rb") as po:
        messages = read_po(po, locale=language)
    compiled = io.BytesIO()
    write_mo(compiled, messages)
    compiled.seek(0)
    return Translations(compiled)


@cache
def translations(language: str) -> Translations:
    """The language's catalog, compiled once per process: for words chosen in Python."""
    return catalog(language)


@pass_context
def _money(context: Context, amount: Any, currency: str) -> str:
    formats: Formats = context["formats"]
    return formats.money(amount, currency)


@pass_context
def _points(context: Context, value: int) -> str:
    formats: Formats = context["formats"]
    return formats.points(value)


@pass_context
def _minor_money(context: Context, minor: int, currency: str) -> str:
    formats: Formats = context["formats"]
    return formats.minor_money(minor, currency)


@pass_context
def _percent(context: Context, value: Any) -> str:
    formats: Formats = context["formats"]
    return formats.percent(value)


def _instant(value: Any) -> Any:
    """The APIs' JSON gives times as RFC 3339 text: read as an aware datetime."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


@pass_context
def _datetime(context: Context, moment: Any) -> str:
    formats: Formats = context["formats"]
    return formats.datetime(_instant(moment))


@pass_context
def _date(context: Context, day: Any) -> str:
    formats: Formats = context["formats"]
    return formats.date(_instant(day))


@cache
def environment(language: str) -> Environment:
    """One environment per language: the translations are installed once, never swapped
    between concurrent requests."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        auto_reload=False,
    )
    env.install_gettext_translations(catalog(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        money=_money,
        minor_money=_minor_money,
        points=_points,
        percent=_percent,
        datetime=_datetime,
        date=_date,
    )
    return env


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    language: str | None = None,
    formats: Formats | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page in the reader's language (the signed-in user's, else the language cookie's)."""
    language = language or reader_language(request)
    formats = formats or Formats(language=language)
    html = (
        environment(language)
        .get_template(template)
        .render(
            {
                "request": request,
                "language": language,
                "languages": LANGUAGES,
                "formats": formats,
                "csrf_token": getattr(request.state, "csrf_token", None),
                "user": getattr(request.state, "user", None),
                **(context or {}),
            }
        )
    )
    return HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))


LANGUAGE_COOKIE: Final = "console_language"


def reader_language(request: Request) -> str:
    user = getattr(request.state, "user", None)
    if user is not None and user.locale in LANGUAGES:
        return str(user.locale)
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE
