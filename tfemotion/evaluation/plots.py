"""Pictures of a classifier's errors: the confusion matrix, and per-label decisions.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "cm.png")
    >>> plot_confusion_matrix([0, 1], [0, 0], ["a", "b"], path).name
    'cm.png'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tfemotion.files import new_figure, rotate_x_labels, save_figure


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
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    labels = list(range(len(label_names)))
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    size = max(5.0, 0.8 * len(label_names) + 2)
    fig, ax = new_figure(size, size)
    ConfusionMatrixDisplay(matrix, display_labels=list(label_names)).plot(
        cmap="Blues", values_format=".2f", ax=ax, colorbar=False
    )
    ax.set_title(title)
    rotate_x_labels(ax)
    return save_figure(fig, path)


def plot_label_confusion(report: dict[str, dict[str, float]], path: str | Path) -> Path:
    """Per label: texts rightly given it, wrongly given it and wrongly denied it (multi-label).

    Example:
        >>> import os, tempfile
        >>> from tfemotion.evaluation.metrics import per_label_report
        >>> report = per_label_report(np.array([[1, 0], [1, 1]]), np.array([[1, 1], [0, 1]]),
        ...                           ["joy", "fear"])
        >>> plot_label_confusion(report, os.path.join(tempfile.mkdtemp(), "labels.png")).name
        'labels.png'
    """
    names = list(report)
    rows = np.arange(len(names))
    fig, ax = new_figure(8, 0.5 * len(names) + 1.8)
    for offset, key, label, color in ((-0.27, "tp", "right (true positive)", "C2"),
                                      (0.0, "fp", "given wrongly (false positive)", "C3"),
                                      (0.27, "fn", "missed (false negative)", "C1")):
        ax.barh(rows + offset, [report[n][key] for n in names], height=0.26, label=label,
                color=color)
    ax.set_yticks(rows, names)
    ax.invert_yaxis()
    ax.set_xlabel("texts")
    ax.set_title("Label decisions")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def plot_reliability_diagram(curves: dict[str, tuple[Any, Any]], path: str | Path,
                             title: str = "Reliability diagram",
                             xlabel: str = "top probability", bins: int = 15) -> Path:
    """Outcome rate against mean probability per equal-width bin, one line per curve, beside
    the diagonal of perfect calibration; the ECE of each curve in its legend entry.

    Args:
        curves: ``{name: (confidences, outcomes)}``, e.g. before and after calibration
            (``tfemotion.evaluation.calibration.reliability_points``).
        path: str or Path. Where to write the PNG.
        title: str. Figure title.
        xlabel: str. What the probabilities are.
        bins: int. Number of equal-width bins.

    Example:
        >>> import os, tempfile
        >>> curves = {"raw": ([0.9, 0.8, 0.6], [1, 0, 1])}
        >>> plot_reliability_diagram(curves, os.path.join(tempfile.mkdtemp(), "r.png")).name
        'r.png'
    """
    from tfemotion.evaluation.calibration import binned_calibration_error, reliability_bins

    fig, ax = new_figure(5.5, 5.5)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    for index, (name, (confidences, outcomes)) in enumerate(curves.items()):
        mean, rate, count = reliability_bins(confidences, outcomes, bins)
        ece = binned_calibration_error(confidences, outcomes, bins)
        ax.plot(mean, rate, marker="o", color=f"C{index}", label=f"{name} (ECE {ece:.2%})")
        for x, y, n in zip(mean, rate, count):
            ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(0, 5 + 8 * index),
                        ha="center", fontsize=6, color=f"C{index}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(f"{xlabel} (mean per bin; numbers: texts per bin)")
    ax.set_ylabel("share right" if "top" in xlabel else "share with the label")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    return save_figure(fig, path)
