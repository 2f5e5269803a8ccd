"""The committed JSON Schemas under schemas/events/ are exactly what the models generate."""

from __future__ import annotations

import json
from pathlib import Path

from shared.events import TOPICS
from shared.events.schemas import SCHEMA_DIR, main, render_schemas, schema_drift, write_schemas

COMMITTED = Path(__file__).resolve().parents[2] / "schemas" / "events"


def test_committed_schemas_match_the_models() -> None:
    expected = render_schemas()
    on_disk = {path.name: path.read_text(encoding="utf-8") for path in COMMITTED.glob("*.json")}

    drifted = sorted(
        name for name in expected.keys() | on_disk.keys() if expected.get(name) != on_disk.get(name)
    )

    assert drifted == [], "regenerate with: python -m shared.events.schemas"


def test_generator_writes_to_the_committed_directory() -> None:
    assert SCHEMA_DIR == COMMITTED


def test_index_lists_every_event_type_by_topic() -> None:
    index = json.loads(render_schemas()["index.json"])

    assert index == {
        topic: {event_type: f"{event_type}.json" for event_type in types}
        for topic, types in TOPICS.items()
    }


def test_check_reports_changed_missing_and_extra_files(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    assert main(["--check", "--dir", str(tmp_path)]) == 0

    (tmp_path / "order.paid.json").write_text("{}\n", encoding="utf-8")
    (tmp_path / "order.placed.json").unlink()
    (tmp_path / "order.shipped.json").write_text("{}\n", encoding="utf-8")

    assert schema_drift(tmp_path) == [
        "missing: order.placed.json",
        "extra: order.shipped.json",
        "differs: order.paid.json",
    ]
    assert main(["--check", "--dir", str(tmp_path)]) == 1
