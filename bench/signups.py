"""Sign-ups of customers with Vietnamese names (with their diacritics), as the shop sends them."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from shared.events import encode_event, make_event
from shared.events.catalog import TOPICS

CustomerSignedUp = TOPICS["shop.customers"]["customer.signed_up"]

# The commonest family names, roughly by their share (Nguyễn is about four in ten).
FAMILY: tuple[str, ...] = ("Nguyễn",) * 8 + ("Trần", "Trần", "Lê", "Lê", "Phạm", "Hoàng")
FAMILY += ("Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lý")
MIDDLE = ("Thị", "Thị", "Văn", "Văn", "Hữu", "Đức", "Minh", "Ngọc", "Thanh", "Quốc", "Thu")
GIVEN = (
    "Lan", "Hương", "Hà", "Linh", "Trang", "Thảo", "Mai", "Ngọc", "Phương", "Huyền", "Anh",
    "Minh", "Hùng", "Dũng", "Tuấn", "Đức", "Quang", "Sơn", "Long", "Khoa", "Việt", "Yến",
)  # fmt: skip


def vietnamese_name(rng: random.Random) -> str:
    """A name as Vietnamese people write it: family, middle and given name."""
    return f"{rng.choice(FAMILY)} {rng.choice(MIDDLE)} {rng.choice(GIVEN)}"


def signed_up_bytes(customer: str, name: str, shop_id: str, at: datetime) -> bytes:
    """A customer.signed_up at `shop_id`, in Vietnamese, consenting to email."""
    data = CustomerSignedUp.model_validate(
        {
            "shop_id": shop_id,
            "customer_id": customer,
            "email": f"{customer}@example.com",
            "name": name,
            "locale": "vi-VN",
            "time_zone": "Asia/Ho_Chi_Minh",
            "consent": {"email": True, "push": False},
        }
    )
    event = make_event(
        "customer.signed_up", source="bench/shop", subject=customer, data=data, time=at
    )
    return encode_event(event)


def generate(customers: list[str], shop_id: str, *, seed: int = 7) -> list[tuple[bytes, bytes]]:
    """A sign-up (key, value) record per customer, each with a generated name."""
    rng = random.Random(seed)  # noqa: S311 - load generation
    now = datetime.now(UTC)
    return [
        (customer.encode(), signed_up_bytes(customer, vietnamese_name(rng), shop_id, now))
        for customer in customers
    ]
