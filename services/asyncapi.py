"""The AsyncAPI document of every service, written to schemas/asyncapi/ and checked for drift
(the documents themselves are completed in shared.asyncapi)."""

from __future__ import annotations

import json
from pathlib import Path

from services.registry import SERVICES

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas" / "asyncapi"


def render() -> dict[str, str]:
    """File name -> pretty JSON of each service's AsyncAPI 3.0 document."""
    documents = {}
    for name, entry in sorted(SERVICES.items()):
        app, _runtime = entry.bootstrap(entry.settings())
        spec = app.schema.to_specification().to_jsonable()
        documents[f"{name}.json"] = (
            json.dumps(spec, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )
    return documents


def drift(directory: Path = DEFAULT_DIR) -> list[str]:
    """Files that differ from the code, are missing, or should not be there."""
    expected = render()
    present = {p.name for p in directory.glob("*.json")} if directory.exists() else set()
    changed = [
        name
        for name, text in expected.items()
        if name not in present or (directory / name).read_text() != text
    ]
    return sorted(changed + [name for name in present if name not in expected])


def write(directory: Path = DEFAULT_DIR) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        stale.unlink()
    documents = render()
    for name, text in documents.items():
        (directory / name).write_text(text)
    return sorted(documents)
