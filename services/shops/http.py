"""The admin HTTP API of the shops service: shops, programme versions, API keys, audit.

Every route takes an X-API-Key: an `admin` key reaches its own shop only (any other is a 404,
as if it did not exist), a `platform` key reaches every shop and may create shops. Errors are
RFC 9457 problem documents.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.shops import handlers
from services.shops.access import ShopPath, Who, change_by, platform_only, reach
from services.shops.bodies import (
    Draft,
    KeyRequest,
    NewShop,
    PreviewAnswer,
    PreviewRequest,
    Publication,
    Rollback,
    Validity,
)
from services.shops.coalition_http import coalition_routes
from services.shops.records import ApiKey, AuditEntry, NewApiKey, Shop, Version
from services.shops.refusals import InvalidDocument, Refusal
from shared.events.fields import Identifier
from shared.events.shops import ProgrammeKind
from shared.problems import install_problem_handlers, problem, problems
from shared.runtime import Runtime, service_api

RULE_BROKEN = "the request breaks a rule"
KeyPath = Annotated[Identifier, Path(description="The key's id (not its secret).")]
KindPath = Annotated[ProgrammeKind, Path(description="earn, tiers or messages.")]


def build_api(runtime: Runtime) -> FastAPI:
    """The FastAPI app served for the paths the operational routes do not take."""
    api = service_api("shops", "Shops, their programmes as versions, API keys and audit.")
    api.state.runtime = runtime
    install_problem_handlers(api, invalid_field=RULE_BROKEN)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A rule across fields (an order's totals in its currency) is not in the document's
        # JSON Schema: breaking it breaks a rule, it does not make the request malformed.
        errors = [
            {"location": ".".join(str(p) for p in e["loc"]), "message": str(e["msg"])}
            for e in exc.errors()
        ]
        if all(e["type"] == "value_error" for e in exc.errors()):
            return problem(422, RULE_BROKEN, errors)
        return problem(422, "the request does not match the API", errors)

    @api.exception_handler(Refusal)
    async def refused(_: Request, exc: Refusal) -> JSONResponse:
        errors = None
        if isinstance(exc, InvalidDocument):
            errors = [{"location": at, "message": what} for at, what in exc.problems]
        return problem(exc.status, exc.reason, errors)

    _shop_routes(api, runtime)
    _programme_routes(api, runtime)
    _key_routes(api, runtime)
    coalition_routes(api, runtime)
    return api


def _shop_routes(api: FastAPI, runtime: Runtime) -> None:
    @api.post("/v1/shops", status_code=201, responses=problems(400, 401, 403, 409, 422, 503))
    async def create_shop(body: NewShop, who: Who) -> Shop:
        """Create a shop from a starter template (a platform key): its programmes start at
        version 1. With `coalition_id`, the shop is the coalition's member from the start:
        it must name a coalition whose latest earn version has a rate for the template's
        currency, else a 422 naming `coalition_id`."""
        platform_only(who, "creates shops")
        async with runtime.require_pool().acquire() as conn:
            return await handlers.create_shop(
                conn,
                change_by(who, runtime),
                shop_id=body.shop_id,
                template=body.template,
                name=body.name,
                coalition_id=body.coalition_id,
            )

    @api.get("/v1/shops", responses=problems(401, 403, 503))
    async def list_shops(who: Who) -> list[Shop]:
        """Every shop for a platform key; the key's own shop for a shop's key."""
        async with runtime.require_pool().acquire() as conn:
            found = await handlers.list_shops(conn)
        return [s for s in found if who.shop_id in {None, s.shop_id}]

    @api.get("/v1/shops/{shop}", responses=problems(401, 403, 404, 422, 503))
    async def get_shop(shop: ShopPath, who: Who) -> Shop:
        """One shop: its currency, time zone, locale, kind and current coalition."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await handlers.find_shop(conn, shop)

    @api.get("/v1/shops/{shop}/audit", responses=problems(401, 403, 404, 422, 503))
    async def get_audit(
        shop: ShopPath, who: Who, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[AuditEntry]:
        """Who changed what, and when, newest first."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await handlers.audit_trail(conn, shop, limit=limit)


def _programme_routes(api: FastAPI, runtime: Runtime) -> None:
    base = "/v1/shops/{shop}/programmes/{kind}"

    @api.get(f"{base}/versions", responses=problems(401, 403, 404, 422, 503))
    async def list_versions(shop: ShopPath, kind: KindPath, who: Who) -> list[Version]:
        """Every version of the shop's programme of this kind, oldest first."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await handlers.list_versions(conn, shop, kind)

    @api.post(f"{base}/versions", status_code=201, responses=problems(400, 401, 403, 404, 422, 503))
    async def publish(shop: ShopPath, kind: KindPath, body: Publication, who: Who) -> Version:
        """Publish a new version; a document that is not valid is a 422 naming each setting."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await handlers.publish_version(
                conn,
                change_by(who, runtime),
                shop_id=shop,
                kind=kind,
                text=body.toml,
                effective_from=body.effective_from,
                reason=body.reason,
            )

    @api.get(f"{base}/versions/{{version}}", responses=problems(401, 403, 404, 422, 503))
    async def show(
        shop: ShopPath,
        kind: KindPath,
        version: Annotated[int, Path(ge=1, le=2_147_483_647)],
        who: Who,
    ) -> Version:
        """One version, with its document."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await handlers.show_version(conn, shop, kind, version)

    @api.post(f"{base}/validate", responses=problems(400, 401, 403, 404, 422, 503))
    async def validate(shop: ShopPath, kind: KindPath, body: Draft, who: Who) -> Validity:
        """Check a draft without saving it: 200, or a 422 naming each setting at fault."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            await handlers.find_shop(conn, shop)
        handlers.validate_draft(kind, body.toml)
        return Validity(valid=True)

    @api.post(f"{base}/rollback", status_code=201, responses=problems(400, 401, 403, 404, 422, 503))
    async def rollback(shop: ShopPath, kind: KindPath, body: Rollback, who: Who) -> Version:
        """Publish an old version's document again, as a new version in force from now."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await handlers.roll_back(
                conn,
                change_by(who, runtime),
                shop_id=shop,
                kind=kind,
                to=body.version,
                reason=body.reason,
            )

    @api.post(
        "/v1/shops/{shop}/programmes/earn/preview",
        responses=problems(400, 401, 403, 404, 422, 503),
    )
    async def preview(shop: ShopPath, body: PreviewRequest, who: Who) -> PreviewAnswer:
        """What a sample paid order would earn under a draft earn programme; nothing is saved."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            await handlers.find_shop(conn, shop)
        found = handlers.preview(
            body.toml,
            body.order.as_paid(),
            paid_at=body.paid_at,
            multiplier=Decimal(body.multiplier),
        )
        return PreviewAnswer(
            earns=found.earns,
            base_amount=found.base_amount,
            base_points=found.base_points,
            tier_points=found.tier_points,
            campaign_points=found.campaign_points,
            points=found.points,
            store_credit_minor=found.store_credit_minor,
        )


def _key_routes(api: FastAPI, runtime: Runtime) -> None:
    @api.get("/v1/shops/{shop}/keys", responses=problems(401, 403, 404, 422, 503))
    async def list_keys(shop: ShopPath, who: Who) -> list[ApiKey]:
        """The shop's keys: prefix, scopes, when made and revoked; never a secret or a hash."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await handlers.list_keys(conn, shop)

    @api.post(
        "/v1/shops/{shop}/keys", status_code=201, responses=problems(400, 401, 403, 404, 422, 503)
    )
    async def create_key(shop: ShopPath, body: KeyRequest, who: Who) -> NewApiKey:
        """A new key of the shop; its secret is in this answer only."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await handlers.create_key(
                conn, change_by(who, runtime), shop_id=shop, scopes=body.scopes
            )

    @api.post(
        "/v1/shops/{shop}/keys/{key_id}/rotate",
        status_code=201,
        responses=problems(401, 403, 404, 409, 422, 503),
    )
    async def rotate_key(shop: ShopPath, key_id: KeyPath, who: Who) -> NewApiKey:
        """A new key with the same scopes; the old one is revoked at once."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await handlers.rotate_key(
                conn, change_by(who, runtime), shop_id=shop, key_id=key_id
            )

    @api.delete("/v1/shops/{shop}/keys/{key_id}", responses=problems(401, 403, 404, 422, 503))
    async def revoke_key(shop: ShopPath, key_id: KeyPath, who: Who) -> ApiKey:
        """Revoke a key: it opens nothing from now on, in every service."""
        reach(who, shop)
        async with runtime.require_pool().acquire() as conn:
            return await handlers.revoke_key(
                conn, change_by(who, runtime), shop_id=shop, key_id=key_id
            )
