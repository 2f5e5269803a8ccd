"""Use cases of the earn service: decide with the domain, persist in the caller's transaction.

Each takes the transaction's unit of work (services/earn/unit_of_work.py), so it runs as well
against the in-memory one of the unit tests. Every use case is importable from here, grouped
by what triggers it: messages (orders, tiers, customers, engagement), requests (the API),
schedules (the passes).
"""

from services.earn.handlers.actions import apply_customers, apply_engagement
from services.earn.handlers.adjustments import AdjustPoints, adjust_points, grant_points_in_bulk
from services.earn.handlers.coalitions import SweepReport, sweep_members
from services.earn.handlers.orders import apply_orders, release_due
from services.earn.handlers.requests import (
    Redeemed,
    RedeemReward,
    SpendCredit,
    cancel_credit_spend,
    cancel_redemption,
    redeem_reward,
    spend_credit,
)
from services.earn.handlers.schedules import ExpiryReport, award_birthdays, expire_due
from services.earn.handlers.tiers import record_tier_changes

__all__ = [
    "AdjustPoints",
    "ExpiryReport",
    "RedeemReward",
    "Redeemed",
    "SpendCredit",
    "SweepReport",
    "adjust_points",
    "apply_customers",
    "apply_engagement",
    "apply_orders",
    "award_birthdays",
    "cancel_credit_spend",
    "cancel_redemption",
    "expire_due",
    "grant_points_in_bulk",
    "record_tier_changes",
    "redeem_reward",
    "release_due",
    "spend_credit",
    "sweep_members",
]
