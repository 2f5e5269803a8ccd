"""Write or check (--check) the JSON Schema of every event type in schemas/events/."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final, Literal

from shared.events.catalog import TOPICS, event_model

__all__ = ["SCHEMA_DIR", "main", "render_schemas", "schema_drift", "write_schemas"]

SCHEMA_DIR: Final = Path(__file__).resolve().parents[2] / "schemas" / "events"
_INPUT_PREFIX: Final = "shop."


def _mode(topic: str) -> Literal["validation", "serialization"]:
    # Inputs are described by what the engine accepts, outputs by what it writes.
    return "validation" if topic.startswith(_INPUT_PREFIX) else "serialization"


def _dump(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas() -> dict[str, str]:
    """File name -> content: one schema per event type, plus index.json (topic -> type -> file)."""
    files: dict[str, str] = {}
    index: dict[str, dict[str, str]] = {}
    for topic, types in TOPICS.items():
        mode = _mode(topic)
        for event_type in types:
            schema = event_model(event_type).model_json_schema(mode=mode)
            schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
            schema["x-topic"] = topic
            name = f"{event_type}.json"
            files[name] = _dump(schema)
            index.setdefault(topic, {})[event_type] = name
    files["index.json"] = _dump(index)
    return files


def schema_drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """One line per file that is missing, extra or different in `directory`; empty when in step."""
    expected = render_schemas()
    on_disk = {path.name for path in directory.glob("*.json")} if directory.is_dir() else set()
    drift = [f"missing: {name}" for name in sorted(expected.keys() - on_disk)]
    drift += [f"extra: {name}" for name in sorted(on_disk - expected.keys())]
    drift += [
        f"differs: {name}"
        for name in sorted(expected.keys() & on_disk)
        if (directory / name).read_text(encoding="utf-8") != expected[name]
    ]
    return drift


def write_schemas(directory: Path = SCHEMA_DIR) -> None:
    """Write every schema and remove files no event type owns any more."""
    expected = render_schemas()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        if stale.name not in expected:
            stale.unlink()
    for name, content in expected.items():
        (directory / name).write_text(content, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Write the schemas, or with --check list drift and return 1 if there is any."""
    parser = argparse.ArgumentParser(prog="python -m shared.events.schemas", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    directory: Path = args.dir
    if not args.check:
        write_schemas(directory)
        return 0
    drift = schema_drift(directory)
    for line in drift:
        print(f"{directory}: {line}", file=sys.stderr)
    return 1 if drift else 0


if __name__ == "__main__":
    sys.exit(main())
