"""Data of the shop.orders topic: an order's life from placed to refunded."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, StrictBool, model_validator

from shared.events.fields import Contract, CustomerId, Identifier, Label, PositiveCount, ShopId
from shared.events.money import Amount, Currency, Money, check_minor_units

__all__ = [
    "LineItem",
    "Order",
    "OrderCancelled",
    "OrderCompleted",
    "OrderPaid",
    "OrderPlaced",
    "OrderRefunded",
    "OrderTotals",
    "RefundedItem",
]


class LineItem(Contract):
    """One product line; `unit_price` is in the order's currency."""

    sku: Identifier
    name: Label
    category: Label
    quantity: PositiveCount
    unit_price: Amount


class OrderTotals(Contract):
    """The order's totals, all in the order's currency.

    When subtotal, discount, shipping and tax are all given, total must equal
    subtotal - discount + shipping + tax, or subtotal - discount + shipping when `tax_included`
    (prices already contain the tax, which is then given for information). Otherwise only total
    is checked.
    """

    subtotal: Money | None = Field(default=None, description="Sum of the lines before discounts.")
    discount: Money | None = None
    shipping: Money | None = None
    tax: Money | None = None
    total: Money = Field(description="What the customer pays.")
    tax_included: StrictBool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        currency = self.total.currency
        subtotal, discount, shipping, tax = self.subtotal, self.discount, self.shipping, self.tax
        if any(
            m is not None and m.currency != currency for m in (subtotal, discount, shipping, tax)
        ):
            msg = "all totals must be in the same currency"
            raise ValueError(msg)
        if subtotal is None or discount is None or shipping is None or tax is None:
            return self
        expected = subtotal.amount - discount.amount + shipping.amount
        if not self.tax_included:
            expected += tax.amount
        if expected != self.total.amount:
            msg = "total must equal subtotal - discount + shipping (+ tax unless tax_included)"
            raise ValueError(msg)
        return self


class Order(Contract):
    """An order as the shop sees it: one currency for every line and total."""

    order_id: Identifier
    customer_id: CustomerId
    currency: Currency
    items: list[LineItem] = Field(min_length=1, max_length=1000)
    totals: OrderTotals
    shop_id: ShopId = "default"

    @model_validator(mode="after")
    def _one_currency(self) -> Self:
        if self.totals.total.currency != self.currency:
            msg = "totals must be in the order currency"
            raise ValueError(msg)
        for index, item in enumerate(self.items):
            check_minor_units(item.unit_price, self.currency, what=f"items[{index}].unit_price")
        return self


class OrderPlaced(Order):
    """The customer placed an order; it is not paid yet."""


class OrderPaid(Order):
    """The order was paid in full."""


class OrderCompleted(Contract):
    """The order was fulfilled and delivered."""

    order_id: Identifier
    customer_id: CustomerId
    shop_id: ShopId = "default"


class OrderCancelled(Contract):
    """The order was cancelled before completion."""

    order_id: Identifier
    customer_id: CustomerId
    reason: Label | None = None
    shop_id: ShopId = "default"


class RefundedItem(Contract):
    """A quantity of one order line given back."""

    sku: Identifier
    quantity: PositiveCount


class OrderRefunded(Contract):
    """Money was given back for an order: all of it (`full`) or part of it.

    An order may be refunded several times in part; `refund_id`, when the shop has one, names
    each refund.
    """

    order_id: Identifier
    customer_id: CustomerId
    refund_id: Identifier | None = None
    refund: Money
    full: StrictBool
    items: Annotated[list[RefundedItem], Field(min_length=1, max_length=1000)] | None = None
    reason: Label | None = None
    shop_id: ShopId = "default"

    @model_validator(mode="after")
    def _refunds_something(self) -> Self:
        if not self.full and self.refund.amount == 0:
            msg = "a partial refund must have a positive amount"
            raise ValueError(msg)
        return self
