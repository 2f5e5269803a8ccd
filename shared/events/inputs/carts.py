"""Data of the shop.carts topic: cart.abandoned."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from shared.events.fields import (
    Contract,
    CustomerId,
    Identifier,
    Label,
    PositiveCount,
    ShopId,
    WebUrl,
)
from shared.events.money import Amount, Currency, Money, check_minor_units

__all__ = ["CartAbandoned", "CartItem"]


class CartItem(Contract):
    """A product left in the cart; `unit_price` is in the cart's currency."""

    sku: Identifier
    name: Label
    quantity: PositiveCount
    unit_price: Amount
    image_url: WebUrl | None = None
    product_url: WebUrl | None = None


class CartAbandoned(Contract):
    """A customer left a cart without ordering; `cart_url` brings them back to it."""

    cart_id: Identifier
    customer_id: CustomerId
    currency: Currency
    items: list[CartItem] = Field(min_length=1, max_length=1000)
    total: Money
    cart_url: WebUrl
    shop_id: ShopId = "default"

    @model_validator(mode="after")
    def _one_currency(self) -> Self:
        if self.total.currency != self.currency:
            msg = "total must be in the cart currency"
            raise ValueError(msg)
        for index, item in enumerate(self.items):
            check_minor_units(item.unit_price, self.currency, what=f"items[{index}].unit_price")
        return self
