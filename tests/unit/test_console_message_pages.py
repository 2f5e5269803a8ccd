"""The messages pages render notify's answers (design section 5.2 shapes): the template list,
each preview in Vietnamese and English, the email in a sandboxed frame of its own route."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from services.console import rendering
from services.console.pages.messages import template_row

# As notify lists them (several triggers and channels), and as the design first sketched them.
NOTIFY_TEMPLATE = {
    "name": "points_earned",
    "triggers": ["points.earned", "points.adjusted"],
    "category": "transactional",
    "channels": ["email", "push"],
    "languages": ["vi", "en"],
}
SKETCHED_TEMPLATE = {
    "name": "welcome",
    "trigger": "customer.signed_up",
    "channel": "email",
    "category": "transactional",
    "languages": ["vi", "en"],
}
PREVIEWS = {
    "vi": {"subject": "Bạn vừa nhận 120 điểm", "text": "Xin chào Lan", "html": "<p>Xin chào</p>"},
    "en": {"subject": "You earned 120 points", "text": "Hello Lan", "html": "<p>Hello</p>"},
}


@dataclass(frozen=True)
class Access:
    shop: str
    may_send: bool

    def can(self, capability: str) -> bool:
        return capability != "test_send" or self.may_send


def page(name: str, language: str, **context: object) -> str:
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    answer = rendering.render(request, name, context, language=language)
    return bytes(answer.body).decode()


def test_the_list_links_each_template_with_its_triggers_channels_and_languages() -> None:
    templates = [template_row(NOTIFY_TEMPLATE), template_row(SKETCHED_TEMPLATE)]
    html = page("messages.html", "en", access=Access("vn", True), templates=templates)
    assert '<a href="/shops/vn/messages/points_earned">points_earned</a>' in html
    assert "<td>points.earned, points.adjusted</td>" in html
    assert "<td>email, push</td>" in html
    assert "<td>customer.signed_up</td>" in html
    assert html.count("<td>vi, en</td>") == 2


def test_both_previews_show_subject_text_and_a_sandboxed_frame() -> None:
    previews = [("vi", PREVIEWS["vi"]), ("en", PREVIEWS["en"])]
    html = page(
        "message.html",
        "vi",
        access=Access("vn", True),
        template="points_earned",
        previews=previews,
        sent=None,
    )
    assert "Bạn vừa nhận 120 điểm" in html
    assert "You earned 120 points" in html
    assert html.count('<iframe class="email-preview" sandbox') == 2
    assert 'src="/shops/vn/messages/points_earned/en/preview.html"' in html
    assert "<p>Hello</p>" not in html  # the email's HTML is only in its frame
    assert html.count("/test-send") == 2
    assert "Gửi thư thử tới địa chỉ của tôi" in html


def test_a_preview_notify_could_not_make_says_so_and_read_only_gets_no_send() -> None:
    html = page(
        "message.html",
        "en",
        access=Access("vn", False),
        template="points_earned",
        previews=[("vi", None), ("en", PREVIEWS["en"])],
        sent=None,
    )
    assert html.count("The preview is unavailable.") == 1
    assert "/test-send" not in html
