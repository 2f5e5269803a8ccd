"""The shop directory in memory: each programme version told once and in order, keys resolved
by hash, a revoked key resolving to nobody, memberships giving the holders; the shop a caller's
request is about, and the account it reaches."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.exceptions import HTTPException
from structlog.testing import capture_logs

from shared.api_keys import key_sha256
from shared.callers import Account, Caller, caller_shop, require_own_account
from shared.consumer import Incoming
from shared.events import make_event
from shared.events.shops import ShopCoalitionChanged
from shared.problems import CodedRefusal
from shared.shop_directory import ShopDirectory

AT = datetime(2026, 1, 1, tzinfo=UTC)


def version(shop: str, kind: str, number: int) -> dict[str, Any]:
    return {"shop_id": shop, "kind": kind, "version": number, "effective_from": AT, "toml": "x=1"}


def key(key_id: str, secret: str, shop: str | None, *, revoked: bool = False) -> dict[str, Any]:
    return {
        "key_id": key_id,
        "key_sha256": key_sha256(secret),
        "shop_id": shop,
        "scopes": ["platform"] if shop is None else ["read"],
        "prefix": secret[:12],
        "revoked_at": AT if revoked else None,
    }


def test_each_version_is_told_once_to_the_callbacks_of_its_kind() -> None:
    directory = ShopDirectory("svc")
    earn: list[tuple[str, int]] = []
    directory.on_programme("earn", lambda shop, number, _at, _toml: earn.append((shop, number)))
    for row in (version("a", "earn", 1), version("a", "tiers", 1), version("a", "earn", 1)):
        directory.programme_known(row)
    directory.programme_known(version("b", "earn", 1))
    assert earn == [("a", 1), ("b", 1)]


def test_a_callback_that_refuses_a_version_does_not_stop_the_others() -> None:
    directory = ShopDirectory("svc")
    told: list[str] = []

    def refuse(shop: str, *_: object) -> None:
        if shop == "a":
            raise ValueError("not a programme this release runs")
        told.append(shop)

    directory.on_programme("messages", refuse)
    with capture_logs() as logs:
        directory.programme_known(version("a", "messages", 1))
        directory.programme_known(version("b", "messages", 1))
    assert told == ["b"]
    # The reason, without a traceback: a catch-up may meet many refused versions.
    [refused] = [entry for entry in logs if entry["event"] == "shop_programme_refused"]
    assert refused["shop_id"] == "a"
    assert refused["error"] == "not a programme this release runs"
    assert "exc_info" not in refused


def test_a_key_resolves_by_its_secret_until_it_is_revoked() -> None:
    directory = ShopDirectory("svc")
    secret = "lk_" + "a" * 43
    directory.key_known(key("k1", secret, "shop-a"))
    assert directory.caller_for(secret) == Caller("shop-a", frozenset({"read"}), secret[:12])
    assert directory.caller_for(secret + "b") is None
    directory.key_known(key("k1", secret, "shop-a", revoked=True))
    assert directory.caller_for(secret) is None


def test_a_shop_key_reaches_its_own_shop_and_a_platform_key_the_one_it_names() -> None:
    shop_key = Caller("shop-a", frozenset({"read"}), "lk_a")
    platform = Caller(None, frozenset({"platform"}), "lk_p")
    assert caller_shop(shop_key) == "shop-a"
    assert caller_shop(shop_key, "shop-a") == "shop-a"
    with pytest.raises(HTTPException) as other:
        caller_shop(shop_key, "shop-b")
    assert other.value.status_code == 404
    assert caller_shop(platform, "shop-b") == "shop-b"
    assert caller_shop(platform) == "default"
    assert platform.may("redeem") and not shop_key.may("redeem")


def test_a_key_the_settings_configure_is_a_platform_key_of_the_service() -> None:
    directory = ShopDirectory("svc", configured_keys=(SecretStr("configured-" + "k" * 30),))
    caller = directory.caller_for("configured-" + "k" * 30)
    assert caller is not None and caller.shop_id is None and caller.platform
    assert caller.key_prefix == "configured"  # never a part of the secret
    assert directory.caller_for("configured-" + "k" * 29) is None
    assert ShopDirectory("svc").caller_for("") is None


def membership(shop: str, number: int, coalition: str | None) -> dict[str, Any]:
    return {"shop_id": shop, "version": number, "coalition_id": coalition, "effective_from": AT}


def test_the_catch_up_and_the_tables_give_the_same_holders() -> None:
    rows = [membership("a", 1, "c"), membership("b", 1, "c"), membership("b", 2, None)]
    from_tables = ShopDirectory("svc")
    for row in rows:
        from_tables.membership_known(row)
    from_topic = ShopDirectory("svc")
    for row in reversed(rows):
        data = ShopCoalitionChanged(**row, changed_by="cli:ops")
        event = make_event("shop.coalition_changed", source="t", subject=row["shop_id"], data=data)
        from_topic.remember(Incoming("loyalty.shops", 0, 0, None, b"", (), event))

    for directory in (from_tables, from_topic):
        assert [directory.holders.at(shop, AT) for shop in ("a", "b", "c")] == ["c", "b", "c"]
        assert directory.holders.members("c", AT) == ["a"]


def test_a_member_shops_key_may_not_act_on_the_coalitions_account() -> None:
    with pytest.raises(CodedRefusal) as refused:
        require_own_account(Account("a", "c"))
    assert (refused.value.status_code, refused.value.code) == (403, "coalition_account")
    assert require_own_account(Account("c", "c")) == Account("c", "c")
    assert require_own_account(Account("n", "n")).coalition_member is False
