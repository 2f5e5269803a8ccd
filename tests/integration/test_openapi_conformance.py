"""Schemathesis, with all its checks, against the HTTP API of earn, tiering, notify, analytics
and shops
served over real HTTP on the real database: no request valid by the OpenAPI document is refused,
none it calls invalid is accepted, no undocumented status, no 500.

The run is bounded and deterministic (Schemathesis's deterministic generation);
`LOYALTY_SCHEMATHESIS_EXAMPLES` raises the number of examples per route and
`LOYALTY_SCHEMATHESIS_SEED` draws them at random from a seed, for longer runs by hand
(docs/earn-api.md says how).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
from analytics_support import ANALYTICS_KEY
from earn_api_support import ADMIN_KEY, programme
from earn_support import earn_of_its_own
from faststream.asgi import AsgiFastStream
from infrastructure import Endpoints
from notify_support import NOTIFY_API_KEY
from pydantic import SecretStr
from shops_support import ShopsService, shops_settings
from support import database_of_its_own, own_groups, running, served
from tiering_tools import ADMIN_API_KEY, tiering_settings

from services.analytics.bootstrap import bootstrap as analytics_bootstrap
from services.analytics.settings import AnalyticsSettings
from services.shops.bootstrap import bootstrap as shops_bootstrap
from services.tiering.bootstrap import bootstrap as tiering_bootstrap
from shared.problems import PROBLEM
from shared.runtime import Runtime

EXAMPLES = int(os.environ.get("LOYALTY_SCHEMATHESIS_EXAMPLES", "8"))
# Unset: deterministic generation, the same requests every run (CI). Set: random generation
# from this seed, which reaches further over repeated runs by hand.
SEED = os.environ.get("LOYALTY_SCHEMATHESIS_SEED")
# Generous: the machine is shared, and a run by hand may ask for many more examples.
RUN_TIMEOUT_S = 60.0 + 25.0 * EXAMPLES
SCHEMATHESIS = Path(sys.executable).with_name("st")
SETTINGS = Path(__file__).parents[1] / "openapi_conformance"


async def schemathesis(base_url: str, *headers: str) -> tuple[int, str]:
    """Run every check and phase against the service's OpenAPI document; exit code and output."""
    options = ["--header", *headers] if headers else []
    with tempfile.TemporaryDirectory() as scratch:  # where Schemathesis keeps its caches
        return await _run(scratch, base_url, options)


async def _run(scratch: str, base_url: str, options: list[str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        f"--config-file={SETTINGS / 'schemathesis.toml'}",
        "run",
        f"{base_url}/openapi.json",
        "--checks=all",
        "--phases=examples,coverage,fuzzing,stateful",
        f"--max-examples={EXAMPLES}",
        "--generation-deterministic" if SEED is None else f"--seed={SEED}",
        "--workers=1",
        "--no-color",
        "--request-timeout=30",
        *options,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=scratch,
        env={
            **os.environ,
            "SCHEMATHESIS_TELEMETRY": "false",
            "SCHEMATHESIS_HOOKS": "hooks",
            "PYTHONPATH": str(SETTINGS),
        },
    )
    out, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


def assert_clean(code: int, output: str) -> None:
    print(output[output.find("SUMMARY") :])  # what ran, for `pytest -s`
    assert code == 0, output[-20000:]
    assert " generated, " in output, output[-20000:]


@pytest.mark.timeout(RUN_TIMEOUT_S + 120)
async def test_earn_api_conforms_to_its_openapi_document(infrastructure: Endpoints) -> None:
    async with (
        earn_of_its_own(
            infrastructure,
            "earn_openapi",
            programme=programme(),
            admin_api_key=SecretStr(ADMIN_KEY),
        ) as earn,
        served(earn.app) as url,
    ):
        assert_clean(*await schemathesis(url, f"X-API-Key: {ADMIN_KEY}"))


@pytest.mark.timeout(RUN_TIMEOUT_S + 120)
async def test_tiering_api_conforms_to_its_openapi_document(infrastructure: Endpoints) -> None:
    app, runtime = tiering_bootstrap(tiering_settings(infrastructure))
    async with running(app, runtime), served(app) as url:
        assert_clean(*await schemathesis(url, f"X-API-Key: {ADMIN_API_KEY}"))


@pytest.mark.timeout(RUN_TIMEOUT_S + 120)
async def test_notify_api_conforms_to_its_openapi_document(
    notify: tuple[AsgiFastStream, Runtime],
) -> None:
    async with served(notify[0]) as url:
        assert_clean(*await schemathesis(url, f"X-API-Key: {NOTIFY_API_KEY}"))


@pytest.mark.timeout(RUN_TIMEOUT_S + 120)
async def test_analytics_api_conforms_to_its_openapi_document(infrastructure: Endpoints) -> None:
    # A database of its own: the session's facts would make each report of centuries slow.
    async with database_of_its_own(infrastructure.database_url, "loyalty_analytics_api") as db:
        settings = AnalyticsSettings(
            consumer_group_prefix=own_groups(),
            kafka_bootstrap_servers=infrastructure.kafka_bootstrap,
            database_url=SecretStr(db),
            log_format="console",
            batch_timeout_ms=20,
            outbox_idle_poll_s=0.05,
            analytics_api_key=SecretStr(ANALYTICS_KEY),
        )
        app, runtime = analytics_bootstrap(settings)
        async with running(app, runtime), served(app) as url:
            assert_clean(*await schemathesis(url, f"X-API-Key: {ANALYTICS_KEY}"))


@pytest.mark.timeout(RUN_TIMEOUT_S + 120)
async def test_shops_api_conforms_to_its_openapi_document(infrastructure: Endpoints) -> None:
    # A database of its own: the shops a run creates stay out of the session's.
    async with database_of_its_own(infrastructure.database_url, "loyalty_shops_api") as db:
        settings = shops_settings(infrastructure).model_copy(update={"database_url": SecretStr(db)})
        app, runtime = shops_bootstrap(settings)
        async with running(app, runtime), served(app) as url:
            platform = await ShopsService(runtime, None, "").new_key(None, ["platform"])  # type: ignore[arg-type]
            assert_clean(*await schemathesis(url, f"X-API-Key: {platform}"))


async def test_operational_routes_answer_other_methods_with_a_405_problem(
    notify: tuple[AsgiFastStream, Runtime],
) -> None:
    transport = httpx.ASGITransport(app=notify[0])
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        for path in ("/healthz", "/readyz", "/metrics", "/docs/asyncapi"):
            refused = await client.post(path)
            assert refused.status_code == 405, path
            assert refused.headers["allow"] == "GET, HEAD", path
            assert refused.headers["content-type"] == PROBLEM, path
            assert (await client.get(path)).status_code == 200, path
        unknown = await client.delete("/no/such/path")
        assert (unknown.status_code, unknown.headers["content-type"]) == (404, PROBLEM)
