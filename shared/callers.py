"""Who calls an HTTP route, and the shop the request is about.

Routes declare a `shop_id: RequestShop = DEFAULT_SHOP` parameter and pass it to every query,
so that a customer id is only ever looked up within one shop. `CallerShop` is its keyed
successor: the shop of the caller's X-API-Key (a platform key names the shop with X-Shop-Id),
resolved from the service's in-memory ShopDirectory (`app.state.shop_directory`), never from a
query per request. `CallerAccount` adds who holds that shop's accounts now: the shop itself, or
its coalition while it is a member (shared.holders).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Header, Request
from starlette.exceptions import HTTPException

from shared.api_keys import GivenKey
from shared.events.fields import ShopId
from shared.problems import CodedRefusal

if TYPE_CHECKING:
    from shared.shop_directory import ShopDirectory

DEFAULT_SHOP = "default"

RequestShop = Annotated[
    ShopId,
    Header(
        alias="X-Shop-Id",
        description="The shop the request is about; the shop `default` when absent.",
    ),
]


@dataclass(frozen=True, slots=True)
class Caller:
    """The holder of a valid key: its shop (None for a platform operator), scopes, prefix."""

    shop_id: str | None
    scopes: frozenset[str]
    key_prefix: str

    @property
    def platform(self) -> bool:
        return "platform" in self.scopes

    def may(self, scope: str) -> bool:
        return self.platform or scope in self.scopes


def resolve_caller(request: Request, given: GivenKey) -> Caller:
    """401 without a key, or with one the directory does not know or knows revoked."""
    if given is None:
        raise HTTPException(401, "the X-API-Key header is required")
    directory: ShopDirectory = request.app.state.shop_directory
    caller = directory.caller_for(given)
    if caller is None:
        raise HTTPException(401, "the X-API-Key header is not a valid key")
    return caller


CallerOf = Annotated[Caller, Depends(resolve_caller)]

NamedShop = Annotated[
    ShopId | None,
    Header(
        alias="X-Shop-Id",
        description="Platform keys: the shop the request is about (`default` when absent). "
        "A shop's key needs none; naming another shop is a 404.",
    ),
]


def caller_shop(caller: CallerOf, named: NamedShop = None) -> str:
    """The shop of the request: the key's own, or the one a platform key names."""
    if caller.shop_id is None:
        return named or DEFAULT_SHOP
    if named is not None and named != caller.shop_id:
        raise HTTPException(404, "not found")  # never tell that another shop exists
    return caller.shop_id


CallerShop = Annotated[str, Depends(caller_shop)]


def require_scope(scope: str) -> Callable[[Caller], Caller]:
    """A dependency: the caller, or 403 when its key lacks `scope` (platform keys have all)."""

    def check(caller: CallerOf) -> Caller:
        if not caller.may(scope):
            raise HTTPException(403, f"the key has no {scope} scope")
        return caller

    return check


@dataclass(frozen=True, slots=True)
class Account:
    """The accounts a request is about: those of `shop_id`, held by `holder_id` (the shop
    itself, or its coalition while it is a member)."""

    shop_id: str
    holder_id: str

    @property
    def coalition_member(self) -> bool:
        return self.holder_id != self.shop_id


def caller_account(request: Request, shop: CallerShop) -> Account:
    """The caller's shop and the holder of its accounts now (by the service's clock)."""
    directory: ShopDirectory = request.app.state.shop_directory
    runtime = getattr(request.app.state, "runtime", None)
    now = runtime.clock.now() if runtime is not None else datetime.now(UTC)
    return Account(shop, directory.holders.at(shop, now))


CallerAccount = Annotated[Account, Depends(caller_account)]


def require_own_account(account: CallerAccount) -> Account:
    """A dependency of account-level admin actions (adjust a balance, set a tier): a member
    shop's key gets 403 `coalition_account`, as the account is the coalition's; the
    coalition's key, or a platform key naming the coalition, may."""
    if account.coalition_member:
        raise CodedRefusal(
            403,
            f"the accounts of this shop are held by its coalition {account.holder_id!r}:"
            " ask with the coalition's key",
            code="coalition_account",
        )
    return account
