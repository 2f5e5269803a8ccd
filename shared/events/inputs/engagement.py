"""Data of the shop.engagement topic: reviews, referrals, social shares, newsletter sign-ups."""

from __future__ import annotations

from typing import Self

from pydantic import Field, StrictBool, StrictInt, model_validator

from shared.events.fields import Contract, CustomerId, Identifier, ShopId, Slug, WebUrl

__all__ = ["NewsletterSubscribed", "ReferralCompleted", "ReviewPosted", "SocialShared"]


class ReviewPosted(Contract):
    """A customer published a product review."""

    review_id: Identifier
    customer_id: CustomerId
    rating: StrictInt = Field(ge=1, le=5, description="Stars, 1 to 5.")
    sku: Identifier | None = Field(default=None, description="The product reviewed, if any.")
    order_id: Identifier | None = Field(default=None, description="The order it was bought in.")
    with_media: StrictBool = Field(default=False, description="Photos or video are attached.")
    shop_id: ShopId = "default"


class ReferralCompleted(Contract):
    """A referred customer qualified (for example, by a first paid order).

    The event is about the referrer, who earns the reward: `customer_id` equals `referrer_id`.
    """

    referral_id: Identifier
    customer_id: CustomerId
    referrer_id: CustomerId
    referred_id: CustomerId
    order_id: Identifier | None = None
    shop_id: ShopId = "default"

    @model_validator(mode="after")
    def _about_the_referrer(self) -> Self:
        if self.customer_id != self.referrer_id:
            msg = "customer_id must equal referrer_id"
            raise ValueError(msg)
        if self.referred_id == self.referrer_id:
            msg = "referred_id must differ from referrer_id"
            raise ValueError(msg)
        return self


class SocialShared(Contract):
    """A customer shared a page of the shop on a social network."""

    share_id: Identifier
    customer_id: CustomerId
    network: Slug = Field(description="Such as 'facebook', 'x', 'zalo'.")
    url: WebUrl
    shop_id: ShopId = "default"


class NewsletterSubscribed(Contract):
    """A customer subscribed to a newsletter."""

    subscription_id: Identifier
    customer_id: CustomerId
    list_id: Identifier | None = Field(default=None, description="Which newsletter, if several.")
    shop_id: ShopId = "default"
