"""The demo's two shops, made with the shops service's own use cases, and the keys to see them."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.samples import SampleShop
from services.shops import handlers
from services.shops.handlers import TEMPLATES, Change
from services.shops.refusals import Conflict
from shared.db import Connection
from shared.events.shops import Scope

ACTOR = "demo"  # who the audit trail says made the demo's shops and keys


@dataclass(frozen=True)
class DemoShop:
    """A shop of the demo: the starter template it is made from, and what its events carry."""

    template: str
    sample: SampleShop

    @property
    def shop_id(self) -> str:
        return self.sample.shop_id

    def messages(self) -> dict[str, str]:
        """The template's messages document (sender_name, sender_address, ...)."""
        text = (TEMPLATES / self.template / "messages.toml").read_text(encoding="utf-8")
        return {k: str(v) for k, v in tomllib.loads(text).items()}


DEMO_SHOPS = (
    DemoShop(
        "vn-fashion",
        SampleShop(
            "vn-fashion", "VND", "vi-VN", "Asia/Ho_Chi_Minh", storefront="https://thoitrang.example"
        ),
    ),
    DemoShop(
        "us-shop",
        SampleShop(
            "us-shop", "USD", "en-US", "America/New_York", storefront="https://usshop.example"
        ),
    ),
)

SHOP_KEY_SCOPES: list[Scope] = ["read", "redeem"]


@dataclass(frozen=True)
class DemoKeys:
    """The secrets made for this run: a platform key, and a read+redeem key per shop."""

    platform: str
    shops: dict[str, str]
    # When the versions this run published are all in force (None: it published none).
    in_force: datetime | None = None


async def open_shops(
    conn: Connection, change: Change, shops: Sequence[DemoShop] = DEMO_SHOPS
) -> DemoKeys:
    """Make the shops unless they exist, revoke the keys that `change.actor` made earlier, and
    make this run's keys (a secret is shown once only, so each run makes its own)."""
    in_force: datetime | None = None
    for shop in shops:
        try:
            await handlers.create_shop(conn, change, shop_id=shop.shop_id, template=shop.template)
        except Conflict:
            continue
        messages = await handlers.publish_version(
            conn,
            change,
            shop_id=shop.shop_id,
            kind="messages",
            text=_deployments_hours(shop),
            reason="the demo's quiet hours are the deployment's",
        )
        in_force = max(in_force or messages.effective_from, messages.effective_from)
    for owner in (None, *(shop.shop_id for shop in shops)):
        for key in await handlers.list_keys(conn, owner):
            if key.created_by == change.actor and key.revoked_at is None:
                await handlers.revoke_key(conn, change, shop_id=owner, key_id=key.key_id)
    platform = await handlers.create_key(conn, change, shop_id=None, scopes=["platform"])
    secrets = {
        shop.shop_id: (
            await handlers.create_key(conn, change, shop_id=shop.shop_id, scopes=SHOP_KEY_SCOPES)
        ).secret
        for shop in shops
    }
    return DemoKeys(platform=platform.secret, shops=secrets, in_force=in_force)


def _deployments_hours(shop: DemoShop) -> str:
    """The template's messages document without its quiet hours (21:00-08:00), so that the
    deployment's apply: the demo runs notify with none, and a demo started in the evening
    shows its emails at once; LOYALTY_QUIET_HOURS_* still set them."""
    text = (TEMPLATES / shop.template / "messages.toml").read_text(encoding="utf-8")
    return re.sub(r"^quiet_hours_(?:start|end) = .*\n", "", text, flags=re.M)
