"""RFC 9457 problem documents (application/problem+json): how every service's HTTP API says
what is wrong with a request."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from shared.errors import TransientFailure
from shared.retry import is_transient

log = structlog.get_logger(__name__)

PROBLEM: Final = "application/problem+json"
RETRY_LATER: Final = {"Retry-After": "1"}


class Problem(BaseModel):
    """RFC 9457 problem details, with `code` naming a refusal for programs."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str | None = Field(
        default=None, description="A stable name of the refusal, where the API gives one."
    )
    errors: list[dict[str, str]] | None = Field(
        default=None, description="422: each field at fault (`location`) and what is wrong."
    )


class InvalidField(Exception):
    """A request that validates but breaks a rule (an unknown tier, say): a 422 naming it."""

    status = 422

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


class CodedRefusal(HTTPException):
    """An HTTP error of a shared dependency with a stable `code` (`coalition_account`, say)."""

    def __init__(self, status: int, detail: str, *, code: str) -> None:
        super().__init__(status, detail)
        self.code = code


def problem_body(
    status: int, detail: str, *, code: str | None = None, errors: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    body = Problem(
        title=HTTPStatus(status).phrase, status=status, detail=detail, code=code, errors=errors
    )
    return body.model_dump(exclude_none=True)


def problem(
    status: int,
    detail: str | dict[str, Any],
    errors: list[dict[str, str]] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """A problem response; `detail` may be a whole body made by problem_body."""
    body = detail if isinstance(detail, dict) else problem_body(status, detail, errors=errors)
    return JSONResponse(body, status, headers=headers, media_type=PROBLEM)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses."""
    schema = {"$ref": "#/components/schemas/Problem"}  # registered through `model`
    return {s: {"model": Problem, "content": {PROBLEM: {"schema": schema}}} for s in statuses}


def allowed_methods(api: FastAPI, request: Request) -> list[str]:
    """The methods of every route of `api` at the request's path (RFC 9110 §15.5.6)."""
    methods: set[str] = set()
    for route in api.router.routes:
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


def install_problem_handlers(api: FastAPI, *, invalid_field: str) -> None:
    """Answer malformed requests, broken rules (`InvalidField`, titled `invalid_field`), HTTP
    errors and bugs of `api` with problem documents."""

    @api.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": ".".join(str(p) for p in e["loc"]), "message": str(e["msg"])}
            for e in exc.errors()
        ]
        return problem(422, "the request does not match the API", errors)

    @api.exception_handler(InvalidField)
    async def broken_rule(_: Request, exc: InvalidField) -> JSONResponse:
        return problem(422, invalid_field, [{"location": exc.location, "message": exc.message}])

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette's Allow names the methods of the first route of the path only.
            headers["Allow"] = ", ".join(allowed_methods(api, request))
        code = exc.code if isinstance(exc, CodedRefusal) else None
        body = problem_body(exc.status_code, str(exc.detail), code=code)
        return problem(exc.status_code, body, headers=headers or None)

    @api.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, TimeoutError | TransientFailure) or is_transient(exc):
            # The database is starting, away or saturated: the same request may pass later.
            log.warning("http_request_unavailable", path=request.url.path, error=type(exc).__name__)
            return problem(
                503, "the service is briefly unavailable; try again", headers=RETRY_LATER
            )
        log.error("http_request_failed", path=request.url.path, exc_info=exc)
        return problem(500, "the request failed; it has been logged")
