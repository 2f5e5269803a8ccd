"""Data models of the events the shop platform publishes (topics shop.*)."""

from shared.events.inputs.carts import CartAbandoned, CartItem
from shared.events.inputs.customers import (
    ChannelConsent,
    CustomerSignedUp,
    CustomerUpdated,
    PersonName,
    WebPushKeys,
    WebPushSubscription,
)
from shared.events.inputs.engagement import (
    NewsletterSubscribed,
    ReferralCompleted,
    ReviewPosted,
    SocialShared,
)
from shared.events.inputs.orders import (
    LineItem,
    Order,
    OrderCancelled,
    OrderCompleted,
    OrderPaid,
    OrderPlaced,
    OrderRefunded,
    OrderTotals,
    RefundedItem,
)

__all__ = [
    "CartAbandoned",
    "CartItem",
    "ChannelConsent",
    "CustomerSignedUp",
    "CustomerUpdated",
    "LineItem",
    "NewsletterSubscribed",
    "Order",
    "OrderCancelled",
    "OrderCompleted",
    "OrderPaid",
    "OrderPlaced",
    "OrderRefunded",
    "OrderTotals",
    "PersonName",
    "ReferralCompleted",
    "RefundedItem",
    "ReviewPosted",
    "SocialShared",
    "WebPushKeys",
    "WebPushSubscription",
]
