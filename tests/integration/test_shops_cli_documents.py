"""`loyalty programmes validate` and `preview` from files: problems named by setting, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from infrastructure import Endpoints
from support import loyalty_command

TEMPLATES = Path(__file__).parents[2] / "services" / "shops" / "templates"


def test_validate_names_each_setting_at_fault_and_exits_2(
    infrastructure: Endpoints, tmp_path: Path
) -> None:
    env = {"LOYALTY_DATABASE_URL": infrastructure.database_url}
    draft = tmp_path / "earn.toml"
    draft.write_text('[currencies.VND]\nper_amount = 0\npoints = 1\n[expiry]\nmode = "soon"\n')
    refused = loyalty_command("programmes", "validate", "earn", str(draft), env=env)
    assert refused.returncode == 2
    assert "earn.currencies.VND.per_amount:" in refused.stderr
    assert "earn.expiry.mode:" in refused.stderr
    path = TEMPLATES / "vn-fashion" / "tiers.toml"
    valid = loyalty_command("programmes", "validate", "tiers", str(path), env=env)
    assert valid.returncode == 0, valid.stderr


def test_preview_prints_the_points_of_a_sample_order(
    infrastructure: Endpoints, tmp_path: Path
) -> None:
    order = tmp_path / "order.json"
    order.write_text(
        json.dumps(
            {
                "order_id": "o-1",
                "customer_id": "c-1",
                "currency": "USD",
                "items": [
                    {
                        "sku": "t",
                        "name": "Tee",
                        "category": "tops",
                        "quantity": 2,
                        "unit_price": "20.50",
                    }
                ],
                "totals": {"total": {"amount": "41.00", "currency": "USD"}},
            }
        )
    )
    env = {"LOYALTY_DATABASE_URL": infrastructure.database_url}
    answer = loyalty_command(
        "programmes",
        "preview",
        str(TEMPLATES / "us-shop" / "earn.toml"),
        "--order",
        str(order),
        "--paid-at",
        "2026-05-01T12:00:00-04:00",
        "--multiplier",
        "1.5",
        env=env,
    )
    assert answer.returncode == 0, answer.stderr
    said = json.loads(answer.stdout)
    assert (said["base_points"], said["tier_points"], said["points"]) == (41, 61, 61)
