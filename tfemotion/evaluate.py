"""Evaluation: metrics, confusion matrix, error analysis.

Shared by the feature-extraction baseline and the fine-tuned classifier, so both report
the same numbers the same way.

Example:
    >>> classification_metrics([0, 1, 1, 2], [0, 1, 2, 2])["accuracy"]
    0.75
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """Accuracy, weighted F1 and macro F1, as plain floats.

    Args:
        y_true: sequence of int. Gold label ids.
        y_pred: sequence of int. Predicted label ids.

    Returns:
        ``{"accuracy": a, "f1_weighted": f, "f1_macro": m}``.

    Raises:
        ValueError: the two sequences differ in length or are empty.

    Example:
        >>> classification_metrics([0, 0, 1], [0, 0, 1])
        {'accuracy': 1.0, 'f1_weighted': 1.0, 'f1_macro': 1.0}
    """
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(
            "y_true and y_pred must be non-empty and of equal length. "
            f"Received: len(y_true)={len(y_true)}, len(y_pred)={len(y_pred)}"
        )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_weighted": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def plot_confusion_matrix(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    label_names: Sequence[str],
    path: str | Path,
    title: str = "Normalized confusion matrix",
) -> Path:
    """Save the row-normalized confusion matrix as a PNG, as in the book.

    Args:
        y_true: sequence of int. Gold label ids.
        y_pred: sequence of int. Predicted label ids.
        label_names: sequence of str. Name of each id, in id order.
        path: str or Path. Where to write the PNG (folders are created).
        title: str. Figure title.

    Returns:
        The path written.

    Example:
        >>> import tempfile, os
        >>> out = plot_confusion_matrix([0, 1], [0, 0], ["a", "b"], os.path.join(tempfile.mkdtemp(), "cm.png"))
        >>> out.stat().st_size > 0
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    labels = list(range(len(label_names)))
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    size = max(5.0, 0.8 * len(label_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay(matrix, display_labels=list(label_names)).plot(
        cmap="Blues", values_format=".2f", ax=ax, colorbar=False
    )
    ax.set_title(title)
    plt.xticks(rotation=45, ha="right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
