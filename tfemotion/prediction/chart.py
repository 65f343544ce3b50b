"""The book's last figure: one text's class probabilities as a bar chart."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Optional

from tfemotion.files import new_figure, rotate_x_labels, save_figure


def plot_probabilities(prediction: dict[str, Any], path: str | Path,
                       text: Optional[str] = None) -> Path:
    """Save a bar chart of one text's class probabilities (the book's last figure) as a PNG.

    Args:
        prediction: dict. One item of ``predict``'s result (uses ``scores``; ``text`` if present).
        path: str or Path. Where to write the PNG (folders are created).
        text: str, optional. Title text (default: the prediction's ``text``).

    Returns:
        The path written.

    Raises:
        ValueError: the prediction has no scores.

    Example:
        >>> import tempfile, os
        >>> out = plot_probabilities({"scores": {"joy": 0.9, "anger": 0.1}},
        ...                          os.path.join(tempfile.mkdtemp(), "p.png"), text="hi")
        >>> out.stat().st_size > 0
        True
    """
    scores = prediction.get("scores") if isinstance(prediction, dict) else None
    if not scores:
        raise ValueError(
            "prediction must be one item of predict(): a dict with 'scores' {label: probability}. "
            f"Received: prediction={prediction!r}"
        )
    title = text if text is not None else prediction.get("text", "")
    fig, ax = new_figure(max(5.0, 0.9 * len(scores) + 1), 4)
    names = list(scores)
    ax.bar(names, [100 * scores[n] for n in names], color="C0")
    ax.set_ylabel("Class probability (%)")
    ax.set_ylim(0, 100)
    if title:
        ax.set_title("\n".join(textwrap.wrap(f'"{title}"', 60)[:3]))
    rotate_x_labels(ax, 30)
    return save_figure(fig, path)
