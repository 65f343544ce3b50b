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


def new_figure(width: float, height: float, rows: int = 1, columns: int = 1) -> tuple[Any, Any]:
    """A matplotlib figure outside pyplot's global state.

    No backend is switched and nothing stays open, so the library's plots neither disturb a
    notebook's inline plots nor leak figures in long runs.

    Args:
        width: float. Inches.
        height: float. Inches.
        rows: int. Rows of axes.
        columns: int. Columns of axes.

    Returns:
        ``(figure, axes)``: one Axes for a 1x1 grid, else a 2-D array of them.

    Example:
        >>> fig, ax = new_figure(4, 3)
        >>> type(ax).__name__
        'Axes'
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    return figure, figure.subplots(rows, columns, squeeze=rows == columns == 1)


def save_figure(figure: Any, path: str | Path) -> Path:
    """Lay out and save a figure as PNG (folders are created); return the path.

    Example:
        >>> import tempfile, os
        >>> fig, ax = new_figure(2, 2)
        >>> save_figure(fig, os.path.join(tempfile.mkdtemp(), "f.png")).read_bytes()[:4]
        b'\\x89PNG'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def rotate_x_labels(axes: Any, degrees: int = 45) -> None:
    """Slant the x tick labels so long label names do not overlap.

    Example:
        >>> fig, ax = new_figure(2, 2); rotate_x_labels(ax)
    """
    for label in axes.get_xticklabels():
        label.set_rotation(degrees)
        label.set_horizontalalignment("right")
