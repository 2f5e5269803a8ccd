"""What the earn HTTP API accepts and returns (JSON bodies; money as decimal strings)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import WithJsonSchema

from services.earn.adapters.spends import CreditSpend, Redemption
from services.earn.domain.money import to_minor
from services.earn.domain.spending import from_minor
from services.earn.programme import Reward
from services.earn.refusals import InvalidField
from shared.api_inputs import NonBlankText
from shared.events import Currency, NonNegativeDecimal

DecimalText = Annotated[
    Decimal, PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json")
]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
OrderId = CustomerId  # the same rule: 1 to 128 printable ASCII characters, no spaces
Reason = Annotated[NonBlankText, StringConstraints(max_length=255)]
# A decimal string more than 0, in digits: the checks of the currency's minor unit and of the
# largest spend come after, as rules (they depend on the currency).
PositiveAmount = Annotated[
    NonNegativeDecimal,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^[0-9]{1,18}(\.[0-9]{1,18})?$",
            "not": {"pattern": r"^[0.]*$"},
            "description": "A decimal number more than 0 written as a string, such as '12.50'.",
        }
    ),
]
MAX_BULK_GRANTS = 1000


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- balance and ledger ---


class PointsView(_View):
    available: int = Field(description="Spendable now; negative after a reversal of spent points.")
    pending: int = Field(description="Waiting for the return window; cannot be spent yet.")
    lifetime_earned: int


class CreditView(_View):
    """Store credit in one currency."""

    currency: str
    amount: DecimalText = Field(description="Available, in the currency's units.")
    amount_minor: int = Field(description="Available, in minor units (cents; dong).")
    pending_minor: int


class BalanceView(_View):
    customer_id: str
    points: PointsView
    store_credit: list[CreditView]
    redemptions_blocked: bool = Field(
        description="True while the points balance is negative: no reward can be redeemed."
    )


class EntryView(_View):
    seq: int = Field(description="Position in the ledger; later entries have higher values.")
    entry_id: str
    shop: str = Field(
        description="The shop where it happened: a member shop, on a coalition's account."
    )
    kind: str = Field(description="earned, reversed, redeemed, restored, expired or adjusted.")
    delta: int
    balance_after: int
    reason: str
    order_id: str | None
    balance_kind: str = Field(description="points, or store_credit in minor units of currency.")
    currency: str | None
    occurred_at: datetime
    expires_at: datetime | None


class LedgerPage(_View):
    customer_id: str
    items: list[EntryView] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null on the last page."
    )


# --- rewards and redemptions ---


class RewardView(_View):
    code: str
    name: str
    kind: Literal["voucher", "points_as_money", "free_shipping", "gift"]
    cost_points: int = Field(description="Points per redemption; per step for points_as_money.")
    value: dict[str, DecimalText] = Field(
        description="Money value per currency (per step for points_as_money); empty otherwise."
    )
    sku: str | None
    valid_days: int = Field(description="How long the issued voucher is valid.")

    @classmethod
    def of(cls, reward: Reward) -> RewardView:
        return cls(
            code=reward.code,
            name=reward.name,
            kind=reward.kind,
            cost_points=reward.cost_points,
            value=dict(reward.value),
            sku=reward.sku,
            valid_days=reward.valid_days,
        )


class Catalogue(_View):
    rewards: list[RewardView] = Field(description="The rewards on offer now.")


class RedeemRequest(_Request):
    reward: Code = Field(description="The code of a reward of the catalogue.")
    currency: CurrencyCode | None = Field(
        default=None,
        description="Which of the reward's values; needed when it has one in several currencies.",
    )
    steps: int | None = Field(
        default=None, ge=1, description="points_as_money: how many steps of cost_points."
    )
    points: int | None = Field(
        default=None, ge=1, description="points_as_money: points to spend, a multiple of a step."
    )


class CancelRequest(_Request):
    reason: Reason = "cancelled by the customer"


class RewardRef(_View):
    code: str
    name: str
    kind: str


class MoneyView(_View):
    amount: DecimalText
    currency: str


class RedemptionView(_View):
    redemption_id: str
    customer_id: str
    reward: RewardRef
    points: int = Field(description="Points the redemption took (given back on cancel).")
    value: MoneyView | None = Field(description="What the voucher is worth; null for no value.")
    sku: str | None = Field(description="The gift's SKU.")
    voucher_code: str = Field(description="Unique and unguessable; void once cancelled.")
    status: Literal["issued", "cancelled"]
    redeemed_entry_id: str
    restored_entry_id: str | None
    created_at: datetime
    expires_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str | None

    @classmethod
    def of(cls, r: Redemption) -> RedemptionView:
        value = None
        if r.value is not None and r.currency is not None:
            value = MoneyView(amount=r.value, currency=r.currency)
        return cls(
            redemption_id=r.redemption_id,
            customer_id=r.customer_id,
            reward=RewardRef(code=r.reward_code, name=r.reward_name, kind=r.reward_kind),
            points=r.points,
            value=value,
            sku=r.sku,
            voucher_code=r.voucher_code,
            status="cancelled" if r.status == "cancelled" else "issued",
            redeemed_entry_id=r.redeemed_entry_id,
            restored_entry_id=r.restored_entry_id,
            created_at=r.created_at,
            expires_at=r.expires_at,
            cancelled_at=r.cancelled_at,
            cancel_reason=r.cancel_reason,
        )


# --- store credit ---


class CreditSpendRequest(_Request):
    currency: Currency = Field(description="The currency of the credit to spend.")
    amount: PositiveAmount = Field(
        description="What to pay with store credit: a decimal string of whole minor units of the "
        "currency ('12.50' USD, '50000' VND), more than 0; finer than the currency's minor unit "
        "or over the largest spend is refused (422, `body.amount`)."
    )
    order_id: OrderId | None = Field(
        default=None, description="The order paid with the credit, for reference."
    )

    @field_validator("amount", mode="before")
    @classmethod
    def _text(cls, amount: object) -> object:
        # FastAPI hands the decoded body over as Python: a JSON number arrives as int or float.
        if not isinstance(amount, str):
            msg = "must be a decimal string such as '12.50', not a number"
            raise ValueError(msg)  # noqa: TRY004 - pydantic turns ValueError into a 422
        return amount

    @field_validator("amount")
    @classmethod
    def _more_than_zero(cls, amount: Decimal) -> Decimal:
        if not amount > 0:
            msg = "must be more than 0"
            raise ValueError(msg)
        return amount

    def amount_minor(self) -> int:
        """The amount in minor units; InvalidField when the currency cannot hold it (a rule
        across two fields, which the OpenAPI document states in words only)."""
        try:
            return to_minor(self.amount, self.currency)
        except ValueError as exc:
            raise InvalidField("body.amount", str(exc)) from exc


class CreditSpendView(_View):
    spend_id: str
    customer_id: str
    currency: str
    amount: DecimalText = Field(description="What the spend took, in the currency's units.")
    amount_minor: int
    order_id: str | None
    balance_after: DecimalText = Field(
        description="The credit left in the currency right after the spend."
    )
    balance_after_minor: int
    status: Literal["spent", "cancelled"]
    spent_entry_id: str = Field(description="The `redeemed` store credit entry of the ledger.")
    restored_entry_id: str | None = Field(
        description="The `restored` entry that gave the credit back; null until cancelled."
    )
    created_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str | None

    @classmethod
    def of(cls, s: CreditSpend) -> CreditSpendView:
        return cls(
            spend_id=s.spend_id,
            customer_id=s.customer_id,
            currency=s.currency,
            amount=from_minor(s.amount_minor, s.currency),
            amount_minor=s.amount_minor,
            order_id=s.order_id,
            balance_after=from_minor(s.balance_after_minor, s.currency),
            balance_after_minor=s.balance_after_minor,
            status="cancelled" if s.status == "cancelled" else "spent",
            spent_entry_id=s.spent_entry_id,
            restored_entry_id=s.restored_entry_id,
            created_at=s.created_at,
            cancelled_at=s.cancelled_at,
            cancel_reason=s.cancel_reason,
        )


# --- admin ---


class AdjustmentRequest(_Request):
    points: int = Field(
        ge=-100_000_000,
        le=100_000_000,
        description="Positive grants, negative deducts; not 0.",
        json_schema_extra={"not": {"const": 0}},
    )
    reason: Reason
    # Strict: JSON's 0 and 1 are not booleans (lax pydantic took them as false and true).
    force: StrictBool = Field(
        default=False, description="Record a deduction even if the balance goes below zero."
    )

    @field_validator("points")
    @classmethod
    def _not_zero(cls, points: int) -> int:
        if points == 0:
            msg = "must not be 0: an adjustment changes the balance"
            raise ValueError(msg)
        return points


class WrittenEntryView(_View):
    entry_id: str
    customer_id: str
    delta: int
    balance_after: int


class Grant(_Request):
    customer_id: CustomerId
    points: int = Field(ge=1, le=100_000_000)


class BulkGrantRequest(_Request):
    batch_id: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[!-~]+$")]
    reason: Reason
    grants: list[Grant] = Field(
        min_length=1,
        max_length=MAX_BULK_GRANTS,
        description="One grant per customer: a customer granted twice is refused (422).",
    )

    def check_one_per_customer(self) -> None:
        """InvalidField when a customer is granted twice: a rule across the items, which the
        OpenAPI document states in words only."""
        seen: set[str] = set()
        for grant in self.grants:
            if grant.customer_id in seen:
                message = f"customer {grant.customer_id!r} is granted twice; give one grant each"
                raise InvalidField("body.grants", message)
            seen.add(grant.customer_id)


class GrantOutcome(_View):
    customer_id: str
    status: Literal["granted"]
    entry_id: str
    points: int
    balance_after: int


class BulkGrantReport(_View):
    batch_id: str
    granted: int = Field(description="Customers credited.")
    points: int = Field(description="Points granted in all.")
    results: list[GrantOutcome]
