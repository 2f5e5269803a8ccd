"""The shop an HTTP request is about: every route that reads or changes a customer takes it.

Routes declare a `shop_id: RequestShop = DEFAULT_SHOP` parameter and pass it to every query,
so that a customer id is only ever looked up within one shop.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Header

from shared.events.fields import ShopId

DEFAULT_SHOP = "default"

RequestShop = Annotated[
    ShopId,
    Header(
        alias="X-Shop-Id",
        description="The shop the request is about; the shop `default` when absent.",
    ),
]
