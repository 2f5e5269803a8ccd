"""ShopApi: the other services' HTTP APIs as one shop's console sees them.

Built only by the ShopAccess dependency, after the membership check, from the URL's shop:
every call carries the console's platform key, `X-Shop-Id` of that shop and
`X-On-Behalf-Of: console:<user id>`. A problem document becomes UpstreamProblem; a timeout, a
refused connection or a 5xx becomes UpstreamUnavailable (the page says the panel is
unavailable instead of failing).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeAlias
from urllib.parse import quote

import httpx

JsonObject: TypeAlias = dict[str, Any]


class UpstreamError(Exception):
    """Something another service answered, or did not."""


@dataclass
class UpstreamProblem(UpstreamError):
    """A problem document (RFC 9457) from another service: the request was refused."""

    status: int
    code: str | None = None
    detail: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.status} {self.code or ''} {self.detail or ''}".strip()


class UpstreamUnavailable(UpstreamError):
    """A timeout, a refused connection, a 5xx, or no platform key configured."""


class Upstream:
    """One HTTP client per service (its base URL, the call timeout), made at first use and
    shared by every request of the console; closed when the console stops."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        api_key: str | None,
        timeout_s: float,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self._urls = dict(urls)
        self._api_key = api_key
        self._timeout_s = timeout_s
        # Tests hand in transports (an ASGI app, a MockTransport) instead of the network.
        self._transports = dict(transports or {})
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, service: str) -> httpx.AsyncClient:
        if service not in self._clients:
            self._clients[service] = httpx.AsyncClient(
                base_url=self._urls[service],
                timeout=self._timeout_s,
                transport=self._transports.get(service),
            )
        return self._clients[service]

    async def send(
        self, service: str, method: str, path: str, headers: dict[str, str], **kwargs: Any
    ) -> httpx.Response:
        """The answer, when it is not a refusal nor a failure."""
        if self._api_key is None:
            raise UpstreamUnavailable("the console has no platform key (LOYALTY_CONSOLE_API_KEY)")
        try:
            answer = await self._client(service).request(
                method, path, headers={"X-API-Key": self._api_key, **headers}, **kwargs
            )
        except httpx.HTTPError as exc:
            # Timeouts, refused connections, broken answers: the panel is unavailable.
            raise UpstreamUnavailable(f"{service}: {type(exc).__name__}") from exc
        if answer.status_code >= 500:
            raise UpstreamUnavailable(f"{service} answered {answer.status_code}")
        if answer.status_code >= 400:
            raise _problem(answer)
        return answer

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def _segment(value: str) -> str:
    """An id as one path segment: a customer id may hold '/', '?' or '#'."""
    return quote(value, safe="")


def _problem(answer: httpx.Response) -> UpstreamProblem:
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    errors = body.get("errors")
    return UpstreamProblem(
        status=answer.status_code,
        code=body.get("code") if isinstance(body.get("code"), str) else None,
        detail=body.get("detail") if isinstance(body.get("detail"), str) else None,
        errors=[e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else [],
    )


class ShopApi:
    """The earn, tiering, notify, analytics and shops APIs bound to one shop and one user.

    `timings` keeps each call's service and duration (and any other wait the caller times
    with `timed`), for the answer's Server-Timing header.
    """

    def __init__(self, shop_id: str, acting_user: str, upstream: Upstream) -> None:
        self.shop_id = shop_id
        self.acting_user = acting_user
        self.timings: list[tuple[str, float]] = []
        self._upstream = upstream

    async def _call(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        return (await self._send(service, method, path, **kwargs)).json()

    async def _send(self, service: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {
            "X-Shop-Id": self.shop_id,
            "X-On-Behalf-Of": f"console:{self.acting_user}",
            **kwargs.pop("headers", {}),
        }
        with self.timed(service):
            return await self._upstream.send(service, method, path, headers, **kwargs)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Count the block's time under `name` (a token: letters, digits, '-', '.', '_')."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings.append((name, time.perf_counter() - started))

    def server_timing(self) -> dict[str, str]:
        """The Server-Timing header of the waits so far (milliseconds), or none."""
        if not self.timings:
            return {}
        parts = [f"{name};dur={seconds * 1000:.1f}" for name, seconds in self.timings]
        return {"Server-Timing": ", ".join(parts)}

    # --- shops ---
    async def shop(self) -> JsonObject:
        return dict(await self._call("shops", "GET", f"/v1/shops/{self.shop_id}"))

    async def versions(self, kind: str) -> list[JsonObject]:
        return list(await self._call("shops", "GET", f"{self._programmes(kind)}/versions"))

    async def version(self, kind: str, n: int) -> JsonObject:
        return dict(await self._call("shops", "GET", f"{self._programmes(kind)}/versions/{n}"))

    async def validate(self, kind: str, toml: str) -> JsonObject:
        body = {"toml": toml}
        return dict(
            await self._call("shops", "POST", f"{self._programmes(kind)}/validate", json=body)
        )

    async def preview(self, toml: str, order: JsonObject, *, paid_at: datetime) -> JsonObject:
        body = {"toml": toml, "order": order, "paid_at": paid_at.isoformat()}
        path = f"{self._programmes('earn')}/preview"
        return dict(await self._call("shops", "POST", path, json=body))

    async def publish(
        self, kind: str, toml: str, effective_from: datetime | None, reason: str
    ) -> JsonObject:
        body: JsonObject = {"toml": toml, "reason": reason}
        if effective_from is not None:
            body["effective_from"] = effective_from.isoformat()
        path = f"{self._programmes(kind)}/versions"
        return dict(await self._call("shops", "POST", path, json=body))

    async def rollback(self, kind: str, n: int, reason: str) -> JsonObject:
        body = {"version": n, "reason": reason}
        path = f"{self._programmes(kind)}/rollback"
        return dict(await self._call("shops", "POST", path, json=body))

    # --- analytics ---
    async def overview(
        self, time_zone: str | None = None, currency: str | None = None
    ) -> JsonObject:
        """Today's and this month's figures in the zone's days (analytics' defaults unless
        given)."""
        params = {"shop": self.shop_id}
        if time_zone is not None:
            params["time_zone"] = time_zone
        if currency is not None:
            params["currency"] = currency
        return dict(await self._call("analytics", "GET", "/v1/overview", params=params))

    async def report_html(self, start: date, end: date) -> str:
        """Analytics' report of the local days [start, end) as one self-contained HTML page."""
        params = {"shop": self.shop_id, "from": start.isoformat(), "to": end.isoformat()}
        answer = await self._send("analytics", "GET", "/v1/report.html", params=params)
        return answer.text

    # --- notify ---
    async def search(self, q: str) -> JsonObject:
        return dict(await self._call("notify", "GET", "/v1/customers", params={"q": q}))

    async def profile(self, customer_id: str) -> JsonObject:
        return dict(await self._call("notify", "GET", f"/v1/customers/{_segment(customer_id)}"))

    async def messages(self, customer_id: str, cursor: str | None = None) -> JsonObject:
        params = {} if cursor is None else {"cursor": cursor}
        path = f"/v1/customers/{_segment(customer_id)}/messages"
        return dict(await self._call("notify", "GET", path, params=params))

    async def resend(self, customer_id: str, message_id: str, key: str) -> JsonObject:
        path = f"/v1/customers/{_segment(customer_id)}/messages/{message_id}/resend"
        headers = {"Idempotency-Key": key}
        return dict(await self._call("notify", "POST", path, headers=headers))

    async def unsubscribe(self, customer_id: str, channel: str) -> JsonObject:
        path = f"/v1/customers/{_segment(customer_id)}/unsubscribe"
        return dict(await self._call("notify", "POST", path, json={"channel": channel}))

    async def templates(self) -> list[JsonObject]:
        answer = await self._call("notify", "GET", "/v1/templates")
        # Notify answers {"items": [...]}; a bare list is read the same.
        items = answer.get("items") if isinstance(answer, dict) else answer
        return [dict(t) for t in items or [] if isinstance(t, dict)]

    async def template_preview(
        self, name: str, locale: str, draft: str | None = None
    ) -> JsonObject:
        body: JsonObject = {"locale": locale}
        if draft is not None:
            body["messages_toml"] = draft
        path = f"/v1/templates/{name}/preview"
        return dict(await self._call("notify", "POST", path, json=body))

    # --- earn ---
    async def balance(self, customer_id: str) -> JsonObject:
        return dict(
            await self._call("earn", "GET", f"/v1/customers/{_segment(customer_id)}/balance")
        )

    async def ledger(self, customer_id: str, cursor: str | None = None) -> JsonObject:
        params = {} if cursor is None else {"cursor": cursor}
        path = f"/v1/customers/{_segment(customer_id)}/ledger"
        return dict(await self._call("earn", "GET", path, params=params))

    async def rewards(self) -> JsonObject:
        return dict(await self._call("earn", "GET", "/v1/rewards"))

    async def redeem(
        self, customer_id: str, reward: str, currency: str | None, key: str
    ) -> JsonObject:
        path = f"/v1/customers/{_segment(customer_id)}/redemptions"
        # Earn refuses a currency for rewards without a money value: send one only when chosen.
        body = {"reward": reward} | ({} if currency is None else {"currency": currency})
        headers = {"Idempotency-Key": key}
        return dict(await self._call("earn", "POST", path, json=body, headers=headers))

    async def adjust(
        self, customer_id: str, points: int, reason: str, force: bool, key: str
    ) -> JsonObject:
        path = f"/v1/admin/customers/{_segment(customer_id)}/adjustments"
        body = {"points": points, "reason": reason, "force": force}
        headers = {"Idempotency-Key": key}
        return dict(await self._call("earn", "POST", path, json=body, headers=headers))

    # --- tiering ---
    async def tier(self, customer_id: str) -> JsonObject:
        return dict(
            await self._call("tiering", "GET", f"/v1/customers/{_segment(customer_id)}/tier")
        )

    async def progress(self, customer_id: str) -> JsonObject:
        return dict(
            await self._call("tiering", "GET", f"/v1/customers/{_segment(customer_id)}/progress")
        )

    async def history(self, customer_id: str) -> JsonObject:
        path = f"/v1/customers/{_segment(customer_id)}/tier-history"
        return dict(await self._call("tiering", "GET", path))

    async def manual_tier(
        self, customer_id: str, tier: str, ends_at: datetime, reason: str
    ) -> JsonObject:
        path = f"/v1/customers/{_segment(customer_id)}/manual-tier"
        body = {"tier": tier, "ends_at": ends_at.isoformat(), "reason": reason}
        return dict(await self._call("tiering", "PUT", path, json=body))

    def _programmes(self, kind: str) -> str:
        return f"/v1/shops/{self.shop_id}/programmes/{kind}"
