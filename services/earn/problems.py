"""Earn's refusals as RFC 9457 problem documents; the rest is shared.problems."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.earn.refusals import InvalidField, Refused
from shared.problems import install_problem_handlers, problem, problem_body, problems

__all__ = ["install_handlers", "problem", "problems", "refusal_body"]


def refusal_body(exc: Refused) -> dict[str, Any]:
    if isinstance(exc, InvalidField):
        errors = [{"location": exc.location, "message": exc.message}]
        return problem_body(exc.status, "the request breaks a rule of the programme", errors=errors)
    return problem_body(exc.status, exc.detail, code=exc.code)


def install_handlers(api: FastAPI) -> None:
    """Answer every error of `api` with a problem document."""
    install_problem_handlers(api, invalid_field="the request breaks a rule of the programme")

    @api.exception_handler(Refused)
    async def refused(_: Request, exc: Refused) -> JSONResponse:
        return problem(exc.status, refusal_body(exc))
