"""RFC 9457 problem documents (application/problem+json): every error of the earn API."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from services.earn.refusals import InvalidField, Refused

log = structlog.get_logger(__name__)

PROBLEM: Final = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details, with `code` naming the refusal for programs."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str | None = Field(
        default=None,
        description="insufficient_points, negative_balance, unknown_customer, ...: see the docs.",
    )
    errors: list[dict[str, str]] | None = Field(
        default=None, description="422: each field at fault (`location`) and what is wrong."
    )


def problem_body(
    status: int, detail: str, *, code: str | None = None, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body = Problem(
        title=HTTPStatus(status).phrase, status=status, detail=detail, code=code, errors=errors
    )
    return body.model_dump(exclude_none=True)


def refusal_body(exc: Refused) -> dict[str, Any]:
    if isinstance(exc, InvalidField):
        errors = [{"location": exc.location, "message": exc.message}]
        return problem_body(exc.status, "the request breaks a rule of the programme", errors=errors)
    return problem_body(exc.status, exc.detail, code=exc.code)


def problem(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body, status, headers=headers, media_type=PROBLEM)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses."""
    schema = {"$ref": "#/components/schemas/Problem"}  # registered through `model`
    return {s: {"model": Problem, "content": {PROBLEM: {"schema": schema}}} for s in statuses}


def install_handlers(api: FastAPI) -> None:
    """Answer every error of `api` with a problem document."""

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in e["loc"]), "message": str(e["msg"])}
            for e in exc.errors()
        ]
        return problem(422, problem_body(422, "the request does not match the API", errors=errors))

    @api.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        return problem(exc.status, refusal_body(exc))

    @api.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return problem(exc.status_code, problem_body(exc.status_code, str(exc.detail)))

    @api.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.error("http_request_failed", path=request.url.path, exc_info=exc)
        return problem(500, problem_body(500, "the request failed; it has been logged"))
