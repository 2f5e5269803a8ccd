"""Makes `cramjam` (aiokafka's snappy, lz4 and zstd codecs) impossible to import (tests only).

Put first on PYTHONPATH of a service process, it stands for a build installed without the
codec library. A sitecustomize found further on the path (the shifted clock of
tests/shifted_clocks.sh) still runs: Python imports only the first.
"""

import importlib.util
import os
import sys

sys.modules["cramjam"] = None  # type: ignore[assignment] # None makes the import fail

for _entry in os.environ.get("PYTHONPATH", "").split(os.pathsep)[1:]:
    _path = os.path.join(_entry, "sitecustomize.py")  # noqa: PTH118 - before any import
    if _entry and os.path.exists(_path) and not _path.startswith(os.path.dirname(__file__)):  # noqa: PTH110, PTH120
        _spec = importlib.util.spec_from_file_location("_next_sitecustomize", _path)
        if _spec is not None and _spec.loader is not None:
            _spec.loader.exec_module(importlib.util.module_from_spec(_spec))
        break
