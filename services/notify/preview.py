"""Sample data for every template (customers' and staff mail's), rendered to files to look at."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.notify.rendering import Renderer

_BASE = "https://shop.example"

SAMPLES: dict[str, dict[str, Any]] = {
    "welcome": {},
    "cart_reminder": {
        "lines": [
            {
                "sku": "TEA-01",
                "name": "Bộ ấm trà Bát Tràng",
                "quantity": 1,
                "unit_price": "1234567",
                "image_url": f"{_BASE}/img/tea-01.jpg",
                "product_url": f"{_BASE}/p/tea-01",
            },
            {
                "sku": "CUP-02",
                "name": "Chén sứ men lam",
                "quantity": 2,
                "unit_price": "89000",
                "image_url": None,
                "product_url": f"{_BASE}/p/cup-02",
            },
        ],
        "total": "1412567",
        "cart_url": f"{_BASE}/cart/abc",
        "coupon": "COMEBACK10",
        "step": 2,
    },
    "tier_upgraded": {"tier_name": "Gold", "benefits": ["Free shipping", "x1.5 points"]},
    "tier_downgraded": {"tier_name": "Silver"},
    "tier_at_risk": {
        "tier_name": "Gold",
        "needed_amount": "500000",
        "basis": "spend",
        "currency": "VND",
        "deadline": "2026-12-31T00:00:00+07:00",
    },
    "points_digest": {"earned": 125, "day": "2026-11-23"},
    "points_expiring": {"points": 300, "expires_at": "2026-12-31T00:00:00+07:00"},
    "birthday": {"voucher": "BIRTHDAY"},
    "winback": {"one_time": True, "coupon": "WELCOMEBACK", "min_order": "300000", "days": 180},
}

_COMMON = {
    "name": "Nguyễn Văn An",
    "balance": 2450,
    "tier_name": "Silver",
    "benefits": [],
    "shop_url": _BASE,
    "unsubscribe_url": "https://notify.shop.example/unsubscribe?token=preview",
    "currency": "VND",
}


# Staff mail: what staff_mail renders it with (its payload and the console's address), no
# customer's values.
STAFF_SAMPLES: dict[str, dict[str, Any]] = {
    "staff_invitation": {
        "invitation_id": "inv_preview",
        "shop_name": "Trà Bát Tràng",
        "invited_by_name": "Trần Thị Bình",
        "role": "marketer",
        "accept_url": "https://console.shop.example/invitations/preview-link-0123456789",
        "expires_at": "2026-12-31T00:00:00+00:00",
        "console_url": "https://console.shop.example",
    },
}


def sample_values(template: str) -> dict[str, Any]:
    """What a message of `template` is rendered with: a customer's values and the trigger's,
    or a staff mail's own."""
    if template in STAFF_SAMPLES:
        return dict(STAFF_SAMPLES[template])
    return {**_COMMON, **SAMPLES[template]}


def write_preview(renderer: Renderer, template: str, locale: str, out: Path) -> list[Path]:
    """Render `template` for `locale` with sample data; returns the files written."""
    rendered = renderer.render(template, locale, sample_values(template))
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{template}.{locale}"
    files = {
        out / f"{stem}.subject.txt": rendered.subject + "\n",
        out / f"{stem}.txt": rendered.text + "\n",
        out / f"{stem}.html": rendered.html,
        out / f"{stem}.push.json": json.dumps(
            {"title": rendered.push_title, "body": rendered.push_body},
            ensure_ascii=False,
            indent=2,
        )
        + "\n",
    }
    for path, content in files.items():
        path.write_text(content, encoding="utf-8")
    return list(files)
