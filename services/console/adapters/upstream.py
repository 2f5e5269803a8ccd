"""ShopApi: the other services' HTTP APIs as one shop's console sees them.

Built only by the ShopAccess dependency, after the membership check, from the URL's shop:
every call carries the console's platform key, `X-Shop-Id` of that shop and
`X-On-Behalf-Of: console:<user id>`. A problem document becomes UpstreamProblem; a timeout, a
refused connection or a 5xx becomes UpstreamUnavailable (the page says the panel is
unavailable instead of failing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeAlias

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


class ShopApi:
    """The earn, tiering, notify, analytics and shops APIs bound to one shop and one user."""

    def __init__(self, shop_id: str, acting_user: str) -> None:
        self.shop_id = shop_id
        self.acting_user = acting_user

    async def _call(self, service: str, method: str, path: str, **kwargs: Any) -> Any:
        raise UpstreamUnavailable(f"{service} is not wired to the console yet")

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

    async def preview(self, toml: str, order: JsonObject) -> JsonObject:
        body = {"toml": toml, "order": order}
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
    async def overview(self) -> JsonObject:
        return dict(
            await self._call("analytics", "GET", "/v1/overview", params={"shop": self.shop_id})
        )

    # --- notify ---
    async def search(self, q: str) -> JsonObject:
        return dict(await self._call("notify", "GET", "/v1/customers", params={"q": q}))

    async def profile(self, customer_id: str) -> JsonObject:
        return dict(await self._call("notify", "GET", f"/v1/customers/{customer_id}"))

    async def messages(self, customer_id: str, cursor: str | None = None) -> JsonObject:
        params = {} if cursor is None else {"cursor": cursor}
        path = f"/v1/customers/{customer_id}/messages"
        return dict(await self._call("notify", "GET", path, params=params))

    async def resend(self, customer_id: str, message_id: str, key: str) -> JsonObject:
        path = f"/v1/customers/{customer_id}/messages/{message_id}/resend"
        headers = {"Idempotency-Key": key}
        return dict(await self._call("notify", "POST", path, headers=headers))

    async def unsubscribe(self, customer_id: str, channel: str) -> JsonObject:
        path = f"/v1/customers/{customer_id}/unsubscribe"
        return dict(await self._call("notify", "POST", path, json={"channel": channel}))

    async def templates(self) -> list[JsonObject]:
        return list(await self._call("notify", "GET", "/v1/templates"))

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
        return dict(await self._call("earn", "GET", f"/v1/customers/{customer_id}/balance"))

    async def ledger(self, customer_id: str, cursor: str | None = None) -> JsonObject:
        params = {} if cursor is None else {"cursor": cursor}
        path = f"/v1/customers/{customer_id}/ledger"
        return dict(await self._call("earn", "GET", path, params=params))

    async def rewards(self) -> JsonObject:
        return dict(await self._call("earn", "GET", "/v1/rewards"))

    async def redeem(self, customer_id: str, reward: str, currency: str, key: str) -> JsonObject:
        path = f"/v1/customers/{customer_id}/redemptions"
        body = {"reward_id": reward, "currency": currency}
        headers = {"Idempotency-Key": key}
        return dict(await self._call("earn", "POST", path, json=body, headers=headers))

    async def adjust(
        self, customer_id: str, points: int, reason: str, force: bool, key: str
    ) -> JsonObject:
        path = f"/v1/admin/customers/{customer_id}/adjustments"
        body = {"points": points, "reason": reason, "force": force}
        headers = {"Idempotency-Key": key}
        return dict(await self._call("earn", "POST", path, json=body, headers=headers))

    # --- tiering ---
    async def tier(self, customer_id: str) -> JsonObject:
        return dict(await self._call("tiering", "GET", f"/v1/customers/{customer_id}/tier"))

    async def progress(self, customer_id: str) -> JsonObject:
        return dict(await self._call("tiering", "GET", f"/v1/customers/{customer_id}/progress"))

    async def history(self, customer_id: str) -> JsonObject:
        path = f"/v1/customers/{customer_id}/tier-history"
        return dict(await self._call("tiering", "GET", path))

    async def manual_tier(
        self, customer_id: str, tier: str, ends_at: datetime, reason: str
    ) -> JsonObject:
        path = f"/v1/customers/{customer_id}/manual-tier"
        body = {"tier": tier, "ends_at": ends_at.isoformat(), "reason": reason}
        return dict(await self._call("tiering", "PUT", path, json=body))

    def _programmes(self, kind: str) -> str:
        return f"/v1/shops/{self.shop_id}/programmes/{kind}"
