"""How every service's HTTP API answers what its routes do not: a method a path does not have,
a path it does not have, and a database that does not answer, each as a problem document."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from shared.errors import TransientFailure
from shared.problems import PROBLEM, install_problem_handlers


def api() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app, invalid_field="the request breaks a rule")

    @app.get("/things/{thing}")
    async def read(thing: str) -> dict[str, str]:
        return {"thing": thing}

    @app.post("/things/{thing}")
    async def write(thing: str) -> dict[str, str]:
        return {"thing": thing}

    @app.get("/slow")
    async def slow() -> None:
        raise TimeoutError

    @app.get("/starting")
    async def starting() -> None:
        raise TransientFailure("the database is not connected yet")

    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "TRACE", "OPTIONS"])
async def test_a_method_the_path_lacks_is_a_405_allowing_every_method_it_has(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/things/a")

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 405


async def test_an_unknown_path_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/nothing/here")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert "allow" not in response.headers


@pytest.mark.parametrize("path", ["/slow", "/starting"])
async def test_a_database_that_does_not_answer_is_a_503_to_retry(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.headers["content-type"] == PROBLEM
