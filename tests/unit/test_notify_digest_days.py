"""Pending points digests keyed again by the local day once the customer's zone is known."""

from __future__ import annotations

from datetime import UTC, date, datetime

from services.notify.domain.digests import PendingDigest, Regrouped, digest_day, regroup

EVENING = datetime(2030, 5, 1, 18, 0, tzinfo=UTC)  # 01:00 on 2 May in Ho Chi Minh City


def pending(
    id_: int, day: str, at: datetime, customer: str = "c-1", shop: str = "default"
) -> PendingDigest:
    return PendingDigest(id_, f"points_digest:{customer}:{day}:email", shop, customer, "email", at)


def test_a_credit_before_the_sign_up_moves_to_the_customers_local_day() -> None:
    early = pending(1, "2030-05-01", EVENING)
    later = pending(2, "2030-05-02", EVENING.replace(minute=5))
    groups = regroup([early, later], {("default", "c-1"): "Asia/Ho_Chi_Minh"})
    assert groups == [
        Regrouped("default", "points_digest:c-1:2030-05-02:email", date(2030, 5, 2), (early, later))
    ]


def test_digests_already_on_the_right_day_are_left_alone() -> None:
    zones = {("default", "c-1"): "Asia/Ho_Chi_Minh"}
    assert regroup([pending(1, "2030-05-02", EVENING)], zones) == []
    assert regroup([pending(1, "2030-05-01", EVENING)], {}) == []  # zone unknown: UTC
    assert digest_day(EVENING, None) == date(2030, 5, 1)
    assert digest_day(EVENING, "Asia/Ho_Chi_Minh") == date(2030, 5, 2)
