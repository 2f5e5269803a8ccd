"""Data models of the events the loyalty engine publishes (topics loyalty.*)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, StrictInt, model_validator

from shared.events.fields import (
    Contract,
    CustomerId,
    EventId,
    Identifier,
    Label,
    LongText,
    ShopId,
    Slug,
    Timestamp,
)
from shared.events.money import Currency, NonNegativeDecimal, check_minor_units

__all__ = [
    "Basis",
    "Channel",
    "MembershipCancelled",
    "MembershipPurchased",
    "Multiplier",
    "NotificationFailed",
    "NotificationOutcome",
    "NotificationSent",
    "NotificationSuppressed",
    "PointsAdjusted",
    "PointsEarned",
    "PointsEntry",
    "PointsExpired",
    "PointsExpiring",
    "PointsRedeemed",
    "PointsReversed",
    "SuppressionReason",
    "TierAtRisk",
    "TierChanged",
    "TierName",
]

AT_SHOP = (
    "A coalition's account only: the member shop where it happened (for an account-level event,"
    " the member shop of the account's last activity); absent otherwise."
)


def _absent(value: object) -> bool:
    # Left out of the JSON when None: events of shops outside any coalition stay byte-identical.
    return value is None


# loyalty.points


def _not_zero(delta: int) -> int:
    if delta == 0:
        msg = "the entry must change the balance"
        raise ValueError(msg)
    return delta


class PointsEntry(Contract):
    """One entry of the append-only points ledger; the balance is the sum of all deltas.

    `balance_after` may be negative: a reversal after the points were spent is still recorded.
    Store credit (cashback) has entries of its own: `balance_kind` "store_credit", with `delta`
    and `balance_after` in minor units of `currency` (cents for USD, dong for VND).
    """

    entry_id: EventId = Field(description="Unique per ledger entry; fit to serve as an event id.")
    customer_id: CustomerId
    shop_id: ShopId = Field(default="default", description="The shop whose programme this is.")
    at_shop: ShopId | None = Field(default=None, description=AT_SHOP, exclude_if=_absent)
    delta: StrictInt = Field(description="Points added (positive) or taken (negative).")
    balance_after: StrictInt
    reason: Label
    order_id: Identifier | None = None
    source_event_id: EventId | None = Field(
        default=None, description="Id of the event that caused this entry."
    )
    balance_kind: Literal["points", "store_credit"] = "points"
    currency: Currency | None = Field(
        default=None, description="Store credit only: the currency of its minor units."
    )
    expires_at: Timestamp | None = Field(
        default=None, description="Points earned: when they expire unless spent before."
    )

    @model_validator(mode="after")
    def _credit_has_currency(self) -> Self:
        if (self.balance_kind == "store_credit") != (self.currency is not None):
            msg = "currency is given for store credit entries, and only for them"
            raise ValueError(msg)
        return self


class PointsEarned(PointsEntry):
    """Points were credited, for example for a paid order or a review."""

    delta: StrictInt = Field(gt=0)


class PointsReversed(PointsEntry):
    """Points earned earlier were taken back, for example after a refund or cancellation."""

    delta: StrictInt = Field(lt=0)


class PointsRedeemed(PointsEntry):
    """The customer spent points (negative delta), or a redemption was cancelled and they
    came back (positive delta)."""

    delta: Annotated[StrictInt, AfterValidator(_not_zero)]


class PointsExpired(PointsEntry):
    """Points reached their expiry date unspent."""

    delta: StrictInt = Field(lt=0)


class PointsAdjusted(PointsEntry):
    """An operator corrected the balance, in either direction."""

    delta: Annotated[StrictInt, AfterValidator(_not_zero)]


class PointsExpiring(Contract):
    """Advance warning: `points` of the balance will expire at `expires_at` unless spent."""

    customer_id: CustomerId
    shop_id: ShopId = Field(default="default", description="The shop whose programme this is.")
    at_shop: ShopId | None = Field(default=None, description=AT_SHOP, exclude_if=_absent)
    points: StrictInt = Field(gt=0)
    expires_at: Timestamp
    balance: StrictInt


# loyalty.tiers

TierName = Annotated[Identifier, Field(description="A tier's code, such as 'gold'.")]
Basis = Literal["spend", "points"]


def _at_least_one(value: Decimal) -> Decimal:
    if value < 1:
        msg = "must be at least 1"
        raise ValueError(msg)
    return value


Multiplier = Annotated[
    NonNegativeDecimal,
    AfterValidator(_at_least_one),
    Field(description="Factor applied to base points earned in this tier; at least 1."),
]


def _check_basis(basis: Basis, amount: Decimal, currency: str | None, *, what: str) -> None:
    if basis == "spend":
        if currency is None:
            msg = "currency is required when basis is 'spend'"
            raise ValueError(msg)
        check_minor_units(amount, currency, what=what)
    else:
        if currency is not None:
            msg = "currency must be null when basis is 'points'"
            raise ValueError(msg)
        if amount != amount.to_integral_value():
            msg = f"{what} must be a whole number of points"
            raise ValueError(msg)


class TierChanged(Contract):
    """A customer moved to another tier.

    `qualifying_amount` is what the customer reached in the qualification window: money in
    `currency` when `basis` is 'spend', whole points (and no currency) when it is 'points'.
    `multiplier` is what earn applies to base points for orders paid after `effective_at`.
    """

    customer_id: CustomerId
    shop_id: ShopId = Field(default="default", description="The shop whose programme this is.")
    at_shop: ShopId | None = Field(default=None, description=AT_SHOP, exclude_if=_absent)
    from_tier: TierName | None = Field(description="Null when the customer enters the programme.")
    to_tier: TierName
    direction: Literal["up", "down"]
    reason: Label
    qualifying_amount: NonNegativeDecimal
    basis: Basis
    currency: Currency | None = None
    effective_at: Timestamp
    multiplier: Multiplier = Decimal(1)
    tier_name: Label | None = Field(default=None, description="The new tier's display name.")
    benefits: list[LongText] = Field(
        default_factory=list, max_length=50, description="The new tier's benefits, for messages."
    )

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        if self.from_tier == self.to_tier:
            msg = "to_tier must differ from from_tier"
            raise ValueError(msg)
        if self.from_tier is None and self.direction != "up":
            msg = "entering the programme is an 'up' change"
            raise ValueError(msg)
        _check_basis(self.basis, self.qualifying_amount, self.currency, what="qualifying_amount")
        return self


class TierAtRisk(Contract):
    """A customer will drop from `tier` at `deadline` unless they add `needed_amount`."""

    customer_id: CustomerId
    shop_id: ShopId = Field(default="default", description="The shop whose programme this is.")
    at_shop: ShopId | None = Field(default=None, description=AT_SHOP, exclude_if=_absent)
    tier: TierName
    needed_amount: NonNegativeDecimal = Field(gt=0)
    basis: Basis
    currency: Currency | None = None
    deadline: Timestamp

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        _check_basis(self.basis, self.needed_amount, self.currency, what="needed_amount")
        return self


# loyalty.memberships


class _Membership(Contract):
    """A paid membership: `tier` from `starts_at` until `ends_at`, paid by an order."""

    customer_id: CustomerId
    shop_id: ShopId = Field(default="default", description="The shop whose programme this is.")
    at_shop: ShopId | None = Field(default=None, description=AT_SHOP, exclude_if=_absent)
    tier: TierName
    starts_at: Timestamp
    ends_at: Timestamp
    order_id: Identifier = Field(description="The order that paid for the membership.")

    @model_validator(mode="after")
    def _ends_after_start(self) -> Self:
        if self.ends_at <= self.starts_at:
            msg = "ends_at must be later than starts_at"
            raise ValueError(msg)
        return self


class MembershipPurchased(_Membership):
    """A customer paid for a membership: it grants `tier` from `starts_at` until `ends_at`."""


class MembershipCancelled(_Membership):
    """A paid membership ends early, at `cancelled_at`: what paid for it was given back.

    Its order was cancelled or refunded in full, or its refunds gave back every unit of the
    membership's SKU. `starts_at` and `ends_at` repeat the purchase, so that a consumer can end
    it without having kept it."""

    cancelled_at: Timestamp


# loyalty.notifications

Channel = Literal["email", "push"]
SuppressionReason = Literal[
    "no_consent",
    "frequency_cap",
    "duplicate",
    "quiet_hours_expired",
    "ordered",
    "unsubscribed",
    "invalid_address",
]


class NotificationOutcome(Contract):
    """What became of one message to one customer on one channel."""

    notification_id: Identifier = Field(
        description="The message: 'n-' and a UUID, the same for each of its outcomes and unique "
        "across deployments; the event's id is 'notify:<that UUID>:<outcome>'."
    )
    customer_id: CustomerId
    shop_id: ShopId = Field(default="default", description="The shop whose programme this is.")
    trigger: Slug = Field(description="What asked for the message, such as 'cart.abandoned'.")
    channel: Channel
    template: Identifier


class NotificationSent(NotificationOutcome):
    """The channel accepted the message."""


class NotificationFailed(NotificationOutcome):
    """The message could not be delivered after its retries."""

    error: LongText = Field(description="What went wrong; never contains the address or content.")


class NotificationSuppressed(NotificationOutcome):
    """The message was deliberately not sent.

    no_consent: the customer has not opted in on this channel; frequency_cap: too many messages
    recently; duplicate: already sent for this trigger; quiet_hours_expired: it went stale while
    waiting for the customer's quiet hours to end; ordered: a cart reminder after the customer
    ordered; unsubscribed: the customer opted out; invalid_address: no usable address or push
    subscription.
    """

    reason: SuppressionReason
