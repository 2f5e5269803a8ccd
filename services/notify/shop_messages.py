"""Each shop's messaging settings (sender, storefront, locale, quiet hours, cap, templates).

A shop's settings are a TOML document (the "messages" programme kind), read with errors that
name the setting, like the programme files. Settings a document leaves out are the deployment's
(the LOYALTY_* environment), which are also the settings of shop `default` and of any shop with
no document. Template overrides are rendered with sample data before they are accepted.
"""

from __future__ import annotations

import bisect
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from email.utils import parseaddr
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.notify.domain import brand
from services.notify.domain.messages import TEMPLATES
from services.notify.preview import sample_values
from services.notify.rendering import Renderer, TemplateProblem
from services.notify.settings import NotifySettings
from shared.programme_files import ProgrammeError, programme_error, validate

DEFAULT_SHOP = "default"
# A shop may replace the layout every HTML message extends, as well as any message.
OVERRIDABLE = frozenset({*TEMPLATES, "layout"})


class TemplateSources(BaseModel):
    """A shop's own source of one template in one language: its text blocks, its HTML, or both."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    txt: str | None = Field(default=None, min_length=1, max_length=256 * 1024)
    html: str | None = Field(default=None, min_length=1, max_length=256 * 1024)


Colour = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$", description="#RRGGBB")]


class Brand(BaseModel):
    """How the shop's emails look: its logo (https) and colours, neutral when left out."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    logo_url: str | None = Field(default=None, max_length=2000, pattern=r"^https://[^\s\"<>]+$")
    primary_colour: Colour = brand.PRIMARY
    on_primary_colour: Colour = brand.ON_PRIMARY
    text_colour: Colour = brand.TEXT


def brand_problems(shown: Brand) -> list[str]:
    """Colours too close to be read (WCAG AA, 4.5:1): the button's text on its colour, and
    the text on the emails' white page."""
    problems = []
    pairs = (
        ("on_primary_colour", shown.on_primary_colour, "primary_colour", shown.primary_colour),
        ("text_colour", shown.text_colour, "the white page", brand.BACKGROUND),
    )
    for setting, colour, against, other in pairs:
        ratio = brand.contrast_ratio(colour, other)
        if ratio < brand.MIN_CONTRAST:
            problems.append(
                f"brand.{setting}: its contrast with {against} is {ratio:.2f}:1; "
                f"at least {brand.MIN_CONTRAST}:1 is needed to be read (WCAG AA)"
            )
    return problems


class ShopMessages(BaseModel):
    """What one shop's messages look like and how often they may go."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sender_name: str = Field(max_length=200, pattern=r"^[^\r\n]*$")  # "": the address alone
    sender_address: str = Field(min_length=3, max_length=254)
    storefront_url: str = Field(max_length=2000)
    default_locale: str = Field(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
    default_currency: str = Field(pattern=r"^[A-Z]{3}$")
    quiet_hours_start: time
    quiet_hours_end: time
    frequency_cap: int = Field(ge=1)
    frequency_window_days: int = Field(ge=1)
    brand: Brand = Field(default_factory=Brand)
    # language ("en", "vi") -> template name -> the shop's sources
    templates: dict[str, dict[str, TemplateSources]] = Field(default_factory=dict)

    @field_validator("sender_address")
    @classmethod
    def _address(cls, value: str) -> str:
        local, _, domain = value.rpartition("@")
        if not local or not domain or parseaddr(value)[1] != value:
            raise ValueError("must be an address such as loyalty@shop.example")
        if not local.isascii():
            raise ValueError("its local part must be ASCII (SMTPUTF8 is not supported)")
        return value

    @field_validator("storefront_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @property
    def mail_from(self) -> str:
        """`"Name" <address>`, the name quoted so that a comma or a quote in it stays its own."""
        if not self.sender_name:
            return self.sender_address
        quoted = self.sender_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{self.sender_address}>'

    @property
    def frequency_window(self) -> timedelta:
        return timedelta(days=self.frequency_window_days)

    def overrides(self) -> dict[str, str]:
        """The template sources by the name the renderer loads them under."""
        return {
            f"{language}/{name}.{kind}": source
            for language, names in self.templates.items()
            for name, sources in names.items()
            for kind, source in (("txt", sources.txt), ("html", sources.html))
            if source is not None
        }


def deployment_messages(settings: NotifySettings) -> ShopMessages:
    """The environment's settings: shop `default`'s, and what a shop's document leaves out."""
    name, address = parseaddr(settings.mail_from)
    return ShopMessages(
        sender_name=name,
        sender_address=address,
        storefront_url=settings.storefront_url,
        default_locale=settings.default_locale,
        default_currency=settings.default_currency,
        quiet_hours_start=settings.quiet_hours_start,
        quiet_hours_end=settings.quiet_hours_end,
        frequency_cap=settings.frequency_cap,
        frequency_window_days=settings.frequency_window_days,
    )


def read_shop_messages(
    text: str, *, defaults: ShopMessages, renderer: Renderer, what: str = "messages"
) -> ShopMessages:
    """A shop's settings from its TOML document over `defaults`; one ProgrammeError listing
    every problem (`frequency_cap: ...`, `templates.en.welcome.txt: ...`) otherwise."""
    try:
        raw: dict[str, Any] = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as exc:
        raise ProgrammeError(f"{what}: not valid TOML: {exc}") from None
    base = defaults.model_dump(exclude={"templates", "brand"})
    return validate(
        ShopMessages,
        {**base, **raw},
        what=what,
        checks=lambda messages: (
            brand_problems(messages.brand) or template_problems(messages, renderer)
        ),
    )


def template_problems(messages: ShopMessages, renderer: Renderer) -> list[str]:
    """What is wrong with a shop's templates: unknown names, or sources that do not render
    every message of their language with sample data."""
    problems = []
    for language, names in messages.templates.items():
        if language not in renderer.languages:
            shipped = ", ".join(renderer.languages)
            problems.append(f"templates.{language}: not a shipped language ({shipped})")
            continue
        for name, sources in names.items():
            if name not in OVERRIDABLE:
                problems.append(f"templates.{language}.{name}: not a template of notify")
            elif name == "layout" and sources.txt is not None:
                problems.append(f"templates.{language}.layout.txt: the layout is HTML only")
    if problems:
        return problems
    shop = renderer.for_shop(
        default_locale=messages.default_locale,
        default_currency=messages.default_currency,
        overrides=messages.overrides(),
        brand=messages.brand.model_dump() | {"shop_name": messages.sender_name},
    )
    for language, names in messages.templates.items():
        # The layout is a part of every message: all of them are tried when it changes.
        tried = TEMPLATES if "layout" in names else sorted(names)
        for name in tried:
            try:
                shop.render(name, language, sample_values(name))
            except TemplateProblem as exc:
                problems.append(f"templates.{language}.{name}: does not render: {exc}")
    return problems


@dataclass(frozen=True, slots=True)
class _Version:
    """One version of a shop's settings, from the moment it takes effect."""

    effective_from: datetime
    version: int
    messages: ShopMessages
    renderer: Renderer

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.effective_from, self.version)


# The settings given without a time (`put`, `put_toml`) apply at every time.
ALWAYS = datetime.min.replace(tzinfo=UTC)


class ShopMessageSettings:
    """The messaging settings of every shop, in memory, by the time they take effect: those
    added, else the deployment's.

    Filled by whoever learns of a shop's settings (the consumer of `loyalty.shops` adds each
    published version); reading a shop's settings on the send path is a dictionary lookup and a
    search among that shop's few versions. A version published to take effect later applies to
    what is sent from then on, without anyone switching it; the earliest version also covers
    the times before it.
    """

    def __init__(self, defaults: ShopMessages, renderer: Renderer) -> None:
        self._defaults = defaults
        self._renderer = renderer
        self._default_version = _Version(ALWAYS, 0, defaults, self._renderer_of(defaults))
        self._shops: dict[str, list[_Version]] = {}

    @classmethod
    def from_settings(cls, settings: NotifySettings, renderer: Renderer) -> ShopMessageSettings:
        return cls(deployment_messages(settings), renderer)

    @property
    def defaults(self) -> ShopMessages:
        return self._defaults

    def for_shop(self, shop_id: str, at: datetime) -> ShopMessages:
        """The shop's settings in effect at `at`."""
        return self._in_effect(shop_id, at).messages

    def renderer_for(self, shop_id: str, at: datetime) -> Renderer:
        """The shop's templates in effect at `at`."""
        return self._in_effect(shop_id, at).renderer

    def draft_renderer(self, text: str) -> Renderer:
        """The templates of a draft of a shop's document, read as a published version is;
        ProgrammeError naming each setting when it would be refused."""
        return self._renderer_of(self._read("draft", text, what="messages draft"))

    def put(self, shop_id: str, messages: ShopMessages) -> None:
        """Set a shop's settings for every time; refused (ProgrammeError) when templates fail."""
        problems = template_problems(messages, self._renderer)
        if problems:
            raise programme_error(f"messages of shop {shop_id}", problems)
        self._shops[shop_id] = [_Version(ALWAYS, 0, messages, self._renderer_of(messages))]

    def put_toml(self, shop_id: str, text: str) -> ShopMessages:
        """Set a shop's settings for every time from its TOML document (over the defaults)."""
        messages = self._read(shop_id, text)
        self._shops[shop_id] = [_Version(ALWAYS, 0, messages, self._renderer_of(messages))]
        return messages

    def add_version(self, shop_id: str, version: int, effective_from: datetime, text: str) -> None:
        """Add a published version of a shop's settings (a ShopDirectory programme callback);
        refused (ProgrammeError) when its document is not valid, the shop's others unchanged."""
        messages = self._read(shop_id, text, what=f"messages of {shop_id}, version {version}")
        added = _Version(effective_from, version, messages, self._renderer_of(messages))
        versions = [v for v in self._shops.get(shop_id, []) if v.version != version]
        bisect.insort(versions, added, key=lambda v: v.order)
        self._shops[shop_id] = versions

    def _in_effect(self, shop_id: str, at: datetime) -> _Version:
        versions = self._shops.get(shop_id)
        if not versions:
            return self._default_version
        # The last version in effect at `at` (of two from the same moment, the later number);
        # before the first, the first.
        found = bisect.bisect_right(versions, (at, _LAST), key=lambda v: v.order)
        return versions[max(found - 1, 0)]

    def _read(self, shop_id: str, text: str, what: str | None = None) -> ShopMessages:
        return read_shop_messages(
            text,
            defaults=self._defaults,
            renderer=self._renderer,
            what=what or f"messages of {shop_id}",
        )

    def _renderer_of(self, messages: ShopMessages) -> Renderer:
        return self._renderer.for_shop(
            default_locale=messages.default_locale,
            default_currency=messages.default_currency,
            overrides=messages.overrides(),
            brand=messages.brand.model_dump() | {"shop_name": messages.sender_name},
        )


_LAST = 2**63
