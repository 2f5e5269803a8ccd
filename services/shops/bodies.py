"""The bodies the shops admin API takes and answers, besides the records it keeps."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.shops.refusals import InvalidDocument
from shared.events import Currency, LineItem, Money, OrderPaid, OrderTotals
from shared.events.fields import EventTime, Identifier, Label, ShopId
from shared.events.money import Amount
from shared.events.shops import ProgrammeText, Reason, Scope

Document = Annotated[ProgrammeText, Field(description="The programme, as TOML.")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Template = Literal["vn-fashion", "us-shop"]


class NewShop(_Body):
    shop_id: ShopId
    template: Template = Field(description="A starter template.")
    name: Label | None = None
    coalition_id: ShopId | None = Field(
        default=None, description="A coalition the shop is a member of from the start."
    )


class NewCoalition(_Body):
    coalition_id: ShopId
    template: Template = Field(
        description="A starter template: the coalition's currency and first programmes."
    )
    name: Label | None = None


class CoalitionChange(_Body):
    coalition_id: ShopId | None = Field(description="The coalition to join; null to leave.")
    effective_from: EventTime | None = Field(
        default=None, description="When it applies (default: the lead after now)."
    )
    reason: Reason = ""


class Draft(_Body):
    toml: Document


class Publication(_Body):
    toml: Document
    effective_from: EventTime | None = Field(
        default=None, description="When it starts to apply (default now); never in the past."
    )
    reason: Reason = ""


class Rollback(_Body):
    version: int = Field(gt=0, le=2_147_483_647, description="The version published again.")
    reason: Reason = ""


class SampleLine(_Body):
    sku: Identifier
    category: Label
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Amount


class SampleOrder(_Body):
    """A paid order to try a draft on: its total is its lines plus shipping and tax."""

    currency: Currency
    lines: list[SampleLine] = Field(min_length=1, max_length=100)
    shipping: Amount | None = None
    tax: Amount | None = None

    def as_paid(self) -> OrderPaid:
        """The order.paid it stands for; InvalidDocument when an amount is finer than the
        currency's minor unit."""
        total = sum((line.unit_price * line.quantity for line in self.lines), Decimal(0))
        shipping, tax = self.shipping, self.tax
        shipping_money = None if shipping is None else self._money("shipping", shipping)
        tax_money = None if tax is None else self._money("tax", tax)
        totals = OrderTotals(
            total=self._money("lines", total + (shipping or 0) + (tax or 0)),
            shipping=shipping_money,
            tax=tax_money,
        )
        items = [
            LineItem(
                sku=line.sku,
                name=line.sku,
                category=line.category,
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
            for line in self.lines
        ]
        try:
            return OrderPaid(
                order_id="preview",
                customer_id="preview",
                currency=self.currency,
                items=items,
                totals=totals,
            )
        except ValidationError as exc:
            problems = [("body.order.lines", str(e["msg"])) for e in exc.errors()]
            raise InvalidDocument("the sample order is not valid", problems) from None

    def _money(self, field: str, amount: Decimal) -> Money:
        try:
            return Money(amount=amount, currency=self.currency)
        except ValidationError:
            finer = f"finer than the minor unit of {self.currency}, or too large"
            raise InvalidDocument(
                "the sample order is not valid", [(f"body.order.{field}", finer)]
            ) from None


class PreviewRequest(_Body):
    toml: Document
    order: SampleOrder
    paid_at: EventTime
    multiplier: str = Field(
        default="1",
        pattern=r"^[0-9]{1,2}(\.[0-9]{1,4})?$",
        description="The customer's tier multiplier, as text: '1.5'.",
    )


class Validity(_Body):
    valid: bool


class PreviewAnswer(_Body):
    earns: bool = Field(description="False when the draft has no rate for the currency.")
    base_amount: Decimal
    base_points: int
    tier_points: int
    campaign_points: int
    points: int
    store_credit_minor: int


class KeyRequest(_Body):
    scopes: list[Scope] = Field(min_length=1, max_length=3)


class Caller(_Body):
    prefix: str
    shop_id: str | None
    scopes: list[Scope]
    on_behalf_of: str | None = None
