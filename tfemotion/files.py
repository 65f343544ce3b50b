"""Writing result files so that a reader never sees half of one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(value: Any, path: str | Path) -> Path:
    """Write JSON atomically (temp file, then rename), so a reader never sees half a file.

    Example:
        >>> import tempfile, os
        >>> write_json({"a": 1}, os.path.join(tempfile.mkdtemp(), "x.json")).read_text()
        '{\\n  "a": 1\\n}\\n'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path
