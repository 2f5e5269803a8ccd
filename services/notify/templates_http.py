"""The templates' routes of the notify API, for the console: the list, and a preview of any
template in vi or en with sample data, with the shop's settings in effect or a draft's.

Both need X-API-Key with the `read` scope, for the key's shop (a platform key names it with
X-Shop-Id). A draft is the shop's `messages` document as the shops API would publish it; one
it would refuse is a 422 whose errors name each setting (`messages.templates.en.welcome`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Path
from pydantic import BaseModel, ConfigDict, Field

from services.notify.domain.messages import TEMPLATES, TRIGGERS, Category
from services.notify.preview import sample_values
from services.notify.rendering import TemplateProblem
from services.notify.shop_messages import ShopMessageSettings
from shared.callers import CallerShop, require_scope
from shared.problems import problem, problems
from shared.programme_files import ProgrammeError
from shared.runtime import Runtime

READ = [Depends(require_scope("read"))]
TemplateName = Annotated[str, Path(pattern=r"^[a-z_]{1,64}$", description="A template's name.")]


class Template(BaseModel):
    name: str
    triggers: list[str]
    category: Category
    channels: list[str]
    languages: list[str]


class TemplateList(BaseModel):
    items: list[Template]


class PreviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    locale: str = Field(
        pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        max_length=35,
        description="A BCP 47 locale: `vi-VN`, `en`, `en-US`; its language picks the template.",
    )
    messages_toml: str | None = Field(
        default=None,
        max_length=1024 * 1024,
        description="A draft of the shop's messages document; the one in effect when absent.",
    )


class Preview(BaseModel):
    language: str
    subject: str
    text: str
    html: str
    push_title: str
    push_body: str


def template_list(languages: list[str]) -> TemplateList:
    """Every template of notify, the triggers that send it, in every shipped language."""
    items = []
    for name in TEMPLATES:
        triggers = sorted(t for t, (template, _) in TRIGGERS.items() if template == name)
        category = TRIGGERS[triggers[0]][1]
        items.append(
            Template(
                name=name,
                triggers=triggers,
                category=category,
                channels=["email", "push"],
                languages=languages,
            )
        )
    return TemplateList(items=items)


def draft_problems(error: ProgrammeError) -> list[dict[str, str]]:
    """The errors of a refused draft, one per setting, located as the shops API does."""
    lines = str(error).splitlines()
    listed = [line.strip() for line in lines[1:] if line.strip()] or [lines[0]]
    found = []
    for line in listed:
        at, _, what = line.partition(": ")
        # "messages draft: not valid TOML: ..." is about the document as a whole.
        whole = at.startswith(("messages", "programme")) or not what
        found.append(
            {"location": "messages" if whole else f"messages.{at}", "message": what or line}
        )
    return found


def install_template_routes(api: FastAPI, runtime: Runtime, shops: ShopMessageSettings) -> None:
    """Add the templates' routes to notify's API."""

    @api.get("/v1/templates", responses=problems(401, 403, 404, 422, 503), dependencies=READ)
    async def list_templates(shop_id: CallerShop) -> TemplateList:
        """Every template, the triggers that send it, its category and languages. Needs the
        `read` scope."""
        return template_list(shops.renderer_for(shop_id, runtime.clock.now()).languages)

    @api.post(
        "/v1/templates/{name}/preview",
        response_model=Preview,
        responses=problems(400, 401, 403, 404, 422, 503),
        dependencies=READ,
    )
    async def preview(name: TemplateName, request: PreviewRequest, shop_id: CallerShop) -> Any:
        """The template rendered with sample data in the locale's language, with the shop's
        settings in effect (sender, currency, its own templates and brand), or with a draft
        of its messages document. Needs the `read` scope."""
        if name not in TEMPLATES:
            return problem(404, f"notify has no template {name!r}")
        renderer = shops.renderer_for(shop_id, runtime.clock.now())
        if request.messages_toml is not None:
            try:
                renderer = shops.draft_renderer(request.messages_toml)
            except ProgrammeError as exc:
                return problem(422, "the draft is not valid", draft_problems(exc))
        try:
            rendered = renderer.render(name, request.locale, sample_values(name))
        except TemplateProblem as exc:
            return problem(
                422,
                "the template does not render",
                [{"location": "messages.templates", "message": str(exc)}],
            )
        return Preview(
            language=rendered.language,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            push_title=rendered.push_title,
            push_body=rendered.push_body,
        )
