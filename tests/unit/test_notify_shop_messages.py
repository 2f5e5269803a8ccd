"""Each shop's messaging settings: read from TOML over the deployment's, templates checked."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from services.notify.preview import sample_values
from services.notify.rendering import Renderer
from services.notify.settings import NotifySettings
from services.notify.shop_messages import ShopMessageSettings, read_shop_messages
from shared.programme_files import ProgrammeError

SETTINGS = NotifySettings(
    mail_from="Loyalty <loyalty@shop.example>",
    storefront_url="https://shop.example",
    frequency_cap=2,
)

WELCOME_EN = '''
[templates.en.welcome]
txt = """
{% block subject %}Welcome to Lotus, {{ name }}{% endblock %}
{% block body %}Shop at {{ shop_url }}. Leave: {{ unsubscribe_url }}{% endblock %}
{% block push_title %}Lotus{% endblock %}
{% block push_body %}Welcome{% endblock %}
"""
'''


NOW = datetime(2031, 3, 1, 9, 0, tzinfo=UTC)


def book() -> ShopMessageSettings:
    return ShopMessageSettings.from_settings(SETTINGS, Renderer())


def test_a_shops_document_sets_what_it_names_and_keeps_the_deployments_other_settings() -> None:
    shops = book()
    messages = shops.put_toml(
        "lotus",
        'sender_name = "Lotus, Hà Nội"\nsender_address = "hi@lotus.example"\n'
        'storefront_url = "https://lotus.example/"\ndefault_locale = "en-US"\n'
        'quiet_hours_start = 22:30:00\nquiet_hours_end = "07:00"\nfrequency_cap = 5\n',
    )
    assert shops.for_shop("lotus", NOW) == messages
    assert messages.mail_from == '"Lotus, Hà Nội" <hi@lotus.example>'
    assert messages.storefront_url == "https://lotus.example"
    assert (messages.quiet_hours_start, messages.quiet_hours_end) == (time(22, 30), time(7, 0))
    assert messages.frequency_cap == 5
    assert messages.frequency_window_days == SETTINGS.frequency_window_days
    assert messages.default_currency == SETTINGS.default_currency
    # A shop with no document, and shop default, have the deployment's settings.
    assert shops.for_shop("elsewhere", NOW) == shops.defaults == shops.for_shop("default", NOW)
    assert shops.defaults.mail_from == '"Loyalty" <loyalty@shop.example>'
    assert shops.defaults.frequency_cap == 2


def test_errors_name_every_setting_that_is_wrong() -> None:
    with pytest.raises(ProgrammeError) as refused:
        book().put_toml(
            "lotus",
            'frequency_cap = 0\nstorefront_url = "ftp://lotus.example"\n'
            'sender_address = "nobody"\ncolour = "red"\n',
        )
    text = str(refused.value)
    assert text.startswith("messages of lotus is not valid:")
    assert "frequency_cap: Input should be greater than or equal to 1" in text
    assert "storefront_url: Value error, must be an absolute http(s) URL" in text
    assert "sender_address: Value error, must be an address" in text
    assert "colour: Extra inputs are not permitted" in text


def test_a_document_that_is_not_toml_is_refused_as_such() -> None:
    with pytest.raises(ProgrammeError, match="messages of lotus: not valid TOML"):
        book().put_toml("lotus", "frequency_cap = = 3")


def test_an_overridden_template_is_used_for_its_shop_only() -> None:
    shops = book()
    shops.put_toml("lotus", WELCOME_EN)
    values = sample_values("welcome")
    lotus = shops.renderer_for("lotus", NOW).render("welcome", "en-US", values)
    shipped = shops.renderer_for("other", NOW).render("welcome", "en-US", values)
    assert lotus.subject == f"Welcome to Lotus, {values['name']}"
    assert shipped.subject == f"Welcome, {values['name']}!"
    # Only the text part was replaced: the HTML part is the shipped one.
    assert lotus.html == shipped.html


def test_a_template_that_does_not_render_is_refused_with_the_template_and_the_problem() -> None:
    broken = WELCOME_EN.replace("{{ name }}", "{{ nickname }}")
    shops = book()
    with pytest.raises(ProgrammeError) as refused:
        shops.put_toml("lotus", broken)
    assert "templates.en.welcome: does not render:" in str(refused.value)
    assert "'nickname' is undefined" in str(refused.value)
    assert shops.for_shop("lotus", NOW) == shops.defaults  # nothing was taken


def test_a_layout_that_breaks_any_message_is_refused() -> None:
    layout = '[templates.vi.layout]\nhtml = "<html>{{ no_such_thing }}</html>"\n'
    with pytest.raises(ProgrammeError) as refused:
        book().put_toml("lotus", layout)
    assert "templates.vi.birthday: does not render:" in str(refused.value)
    assert "templates.vi.winback: does not render:" in str(refused.value)


def test_unknown_templates_and_languages_are_refused() -> None:
    document = (
        '[templates.fr.welcome]\ntxt = "x"\n'
        '[templates.en.newsletter]\ntxt = "x"\n'
        '[templates.en.layout]\ntxt = "x"\n'
    )
    with pytest.raises(ProgrammeError) as refused:
        read_shop_messages(document, defaults=book().defaults, renderer=Renderer())
    text = str(refused.value)
    assert "templates.fr: not a shipped language (en, vi)" in text
    assert "templates.en.newsletter: not a template of notify" in text
    assert "templates.en.layout.txt: the layout is HTML only" in text


def test_settings_put_as_a_model_are_checked_like_a_document() -> None:
    shops = book()
    good = shops.defaults.model_copy(update={"storefront_url": "https://lotus.example"})
    shops.put("lotus", good)
    assert shops.for_shop("lotus", NOW).storefront_url == "https://lotus.example"
    bad = read_shop_messages(WELCOME_EN, defaults=shops.defaults, renderer=Renderer())
    broken = bad.templates["en"]["welcome"].model_copy(update={"txt": "{% block subject %}"})
    with pytest.raises(ProgrammeError, match=r"templates\.en\.welcome: does not render"):
        shops.put("other", bad.model_copy(update={"templates": {"en": {"welcome": broken}}}))


def test_a_published_version_takes_over_at_its_effective_time_and_the_first_covers_before_it() -> (
    None
):
    shops = book()
    later = NOW + timedelta(days=3)
    shops.add_version("lotus", 2, later, "frequency_cap = 9\n")  # versions may arrive late
    shops.add_version("lotus", 1, NOW, "frequency_cap = 4\n")
    assert shops.for_shop("lotus", NOW - timedelta(days=30)).frequency_cap == 4
    assert shops.for_shop("lotus", NOW).frequency_cap == 4
    assert shops.for_shop("lotus", later - timedelta(microseconds=1)).frequency_cap == 4
    assert shops.for_shop("lotus", later).frequency_cap == 9
    assert shops.for_shop("lotus", later + timedelta(days=400)).frequency_cap == 9
    # Two versions from the same moment: the later number applies; the same number again
    # replaces what it said (a redelivered event).
    shops.add_version("lotus", 3, later, "frequency_cap = 7\n")
    shops.add_version("lotus", 3, later, "frequency_cap = 8\n")
    assert shops.for_shop("lotus", later).frequency_cap == 8
    assert shops.for_shop("other", later) == shops.defaults


def test_a_refused_version_leaves_the_shops_others_in_place() -> None:
    shops = book()
    shops.add_version("lotus", 1, NOW, WELCOME_EN)
    broken = WELCOME_EN.replace("{{ name }}", "{{ nickname }}")
    with pytest.raises(ProgrammeError, match="messages of lotus, version 2"):
        shops.add_version("lotus", 2, NOW + timedelta(hours=1), broken)
    rendered = shops.renderer_for("lotus", NOW + timedelta(days=1)).render(
        "welcome", "en-US", sample_values("welcome")
    )
    assert rendered.subject.startswith("Welcome to Lotus")
