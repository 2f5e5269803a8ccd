"""Templates: sandboxed Jinja2, autoescaped HTML, strict variables, capped output, babel money."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, format_decimal
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    DictLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    select_autoescape,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.notify.domain import brand

TEMPLATES_DIR = Path(__file__).parent / "templates"
TEXT_BLOCKS = ("subject", "body", "push_title", "push_body")
# The brand of a shop without a [brand] section (services/notify/domain/brand.py).
NEUTRAL_BRAND: Mapping[str, str | None] = {
    "logo_url": None,
    "primary_colour": brand.PRIMARY,
    "on_primary_colour": brand.ON_PRIMARY,
    "text_colour": brand.TEXT,
    "shop_name": None,  # the logo's alternative text
}


class TemplateProblem(Exception):
    """A template cannot produce this message: unknown variable, syntax, size. Never retried."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """One message in one language: subject, plain text, HTML and the push notification."""

    language: str
    subject: str
    text: str
    html: str
    push_title: str
    push_body: str


class Renderer:
    """Renders `<language>/<template>.txt` (blocks) and `<language>/<template>.html`."""

    def __init__(
        self,
        directory: Path = TEMPLATES_DIR,
        *,
        max_bytes: int = 256 * 1024,
        default_locale: str = "vi-VN",
        default_currency: str = "VND",
    ) -> None:
        self._env = _environment(FileSystemLoader(directory))
        self._directory = directory
        self._languages = sorted(p.name for p in directory.iterdir() if p.is_dir())
        self._max_chars = max_bytes
        self._default_locale = default_locale
        self._default_currency = default_currency
        self._brand: dict[str, str | None] = dict(NEUTRAL_BRAND)

    def for_shop(
        self,
        *,
        default_locale: str,
        default_currency: str,
        overrides: Mapping[str, str],
        brand: Mapping[str, str | None] | None = None,
    ) -> Renderer:
        """A renderer with a shop's defaults, brand (`brand` in every template) and its own
        sources for some templates (keyed `<language>/<template>.<txt|html>`). Without
        overrides it shares this one's compiled templates, so a thousand shops that keep the
        shipped ones compile them once."""
        shop = copy.copy(self)
        shop._default_locale = default_locale
        shop._default_currency = default_currency
        shop._brand = dict(brand or NEUTRAL_BRAND)
        if overrides:
            loader = self._env.loader
            assert loader is not None  # every renderer's environment has one
            shop._env = _environment(ChoiceLoader([DictLoader(dict(overrides)), loader]))
        return shop

    @property
    def languages(self) -> list[str]:
        return list(self._languages)

    def missing(self, templates: tuple[str, ...]) -> list[str]:
        """Template files that should exist for every language and do not."""
        return [
            f"{language}/{name}.{kind}"
            for language in self._languages
            for name in templates
            for kind in ("txt", "html")
            if not (self._directory / language / f"{name}.{kind}").is_file()
        ]

    def language_of(self, locale: str | None) -> str:
        """The template language for a BCP 47 locale: 'vi-VN' -> 'vi'; the default otherwise."""
        for candidate in (locale, self._default_locale):
            if candidate:
                language = candidate.split("-")[0].lower()
                if language in self._languages:
                    return language
        return self._languages[0]

    def render(self, template: str, locale: str | None, values: Mapping[str, Any]) -> Rendered:
        language = self.language_of(locale)
        babel_locale = _babel_locale(locale, language)
        helpers = self._helpers(babel_locale, values)
        context = {**values, **helpers, "language": language, "brand": self._brand}
        try:
            text = self._env.get_template(f"{language}/{template}.txt")
            blocks = {}
            for name in TEXT_BLOCKS:
                block = text.blocks.get(name)
                if block is None:
                    raise TemplateProblem(f"{language}/{template}.txt has no block {name!r}")
                blocks[name] = self._capped(block(text.new_context(context))).strip()
            html = self._env.get_template(f"{language}/{template}.html")
            body_html = self._capped(html.generate(context))
        except TemplateError as exc:
            raise TemplateProblem(f"{language}/{template}: {type(exc).__name__}: {exc}") from None
        return Rendered(
            language=language,
            subject=" ".join(blocks["subject"].split()),
            text=blocks["body"],
            html=body_html,
            push_title=blocks["push_title"],
            push_body=blocks["push_body"],
        )

    def _capped(self, chunks: Iterator[str]) -> str:
        parts: list[str] = []
        size = 0
        for chunk in chunks:
            size += len(chunk)
            if size > self._max_chars:
                raise TemplateProblem(f"output exceeds {self._max_chars} characters")
            parts.append(chunk)
        return "".join(parts)

    def _helpers(self, locale: Locale, values: Mapping[str, Any]) -> dict[str, Any]:
        currency = str(values.get("currency") or self._default_currency)

        def money(amount: Any, in_currency: str | None = None) -> str:
            try:
                number = Decimal(str(amount))
            except InvalidOperation:
                raise TemplateProblem("money() needs a number") from None
            return str(format_currency(number, in_currency or currency, locale=locale))

        def number(value: Any) -> str:
            return str(format_decimal(Decimal(str(value)), locale=locale))

        def day(value: Any) -> str:
            return str(format_date(_as_date(value), format="long", locale=locale))

        def moment(value: Any, zone: str | None = None) -> str:
            when = datetime.fromisoformat(str(value)) if isinstance(value, str) else value
            return str(
                format_datetime(
                    when, format="medium", tzinfo=ZoneInfo(zone) if zone else None, locale=locale
                )
            )

        return {"money": money, "number": number, "day": day, "moment": moment}


def _environment(loader: BaseLoader) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=loader,
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return datetime.fromisoformat(str(value)).date()


def _babel_locale(locale: str | None, language: str) -> Locale:
    for candidate in (locale, language):
        if candidate:
            try:
                return Locale.parse(candidate.replace("-", "_"))
            except (UnknownLocaleError, ValueError):
                continue
    return Locale.parse(language)
