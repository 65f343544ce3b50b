"""The figures of a classifier on labelled texts: single-label and multi-label metrics.

Single-label (one label per text): accuracy, weighted and macro F1 (the book's
``compute_metrics``) and a per-class report. Multi-label (any number of labels per text): micro,
macro and weighted F1, subset accuracy, Hamming loss and a per-label report with its confusion
counts. ``task_metrics`` picks the set a ``Task`` is judged by, ``headline`` keeps the figures
a report leads with.

Example:
    >>> classification_metrics([0, 1, 1, 2], [0, 1, 2, 2])["accuracy"]
    0.75
    >>> metrics = multilabel_metrics(np.array([[1, 0], [1, 1]]), np.array([[1, 0], [1, 0]]))
    >>> metrics["f1_micro"], metrics["subset_accuracy"], metrics["hamming_loss"]
    (0.8, 0.5, 0.25)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tfemotion.task import Task


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


def multilabel_metrics(targets: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Micro, macro and weighted F1, subset accuracy and Hamming loss.

    Args:
        targets: ``[examples, labels]`` 0/1 gold labels.
        predicted: ``[examples, labels]`` 0/1 (or boolean) predictions.

    Example:
        >>> multilabel_metrics(np.array([[1, 0]]), np.array([[1, 1]]))["hamming_loss"]
        0.5
    """
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss

    truth, guess = np.asarray(targets) > 0.5, np.asarray(predicted).astype(bool)
    if truth.shape != guess.shape or truth.size == 0:
        raise ValueError("targets and predicted must be non-empty and of one shape. Received: "
                         f"{truth.shape} and {guess.shape}")
    return {
        "f1_micro": float(f1_score(truth, guess, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(truth, guess, average="macro", zero_division=0)),
        "f1_weighted": float(f1_score(truth, guess, average="weighted", zero_division=0)),
        "subset_accuracy": float(accuracy_score(truth, guess)),
        "hamming_loss": float(hamming_loss(truth, guess)),
    }


def task_metrics(task: Task, targets: Any, predicted: Any) -> dict[str, float]:
    """The metrics ``task`` is judged by: ``classification_metrics`` on label ids, or
    ``multilabel_metrics`` on ``[texts, labels]`` 0/1 arrays.

    Example:
        >>> task_metrics(Task(("a", "b")), [0, 1], [0, 0])["accuracy"]
        0.5
    """
    if task.multi_label:
        return multilabel_metrics(targets, predicted)
    return classification_metrics(targets, predicted)


def headline(result: dict[str, Any], task: Task) -> dict[str, Any]:
    """The figures of a result that a report of ``task`` leads with (what ``metrics.json``
    keeps); a multi-label result also keeps its figures at threshold 0.5.

    Example:
        >>> headline({"accuracy": 0.9, "f1_weighted": 0.89, "f1_macro": 0.85, "loss": 0.3},
        ...          Task(("a", "b")))
        {'accuracy': 0.9, 'f1_weighted': 0.89, 'f1_macro': 0.85}
    """
    keys = task.headline_metrics + (("at_threshold_0.5",) if task.multi_label else ())
    return {key: result[key] for key in keys if key in result}


def f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 from true-positive, false-positive and false-negative counts (0 where all are 0).

    Example:
        >>> f1_from_counts(np.array([1, 0]), np.array([1, 0]), np.array([0, 0])).tolist()
        [0.6666666666666666, 0.0]
    """
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


# region Per-class and per-label reports


def per_class_report(
    y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each class, in id order.

    Args:
        y_true: sequence of int. Gold label ids.
        y_pred: sequence of int. Predicted label ids.
        label_names: sequence of str. Name of each id, in id order.

    Returns:
        ``{name: {"precision": p, "recall": r, "f1": f, "support": n}}``.

    Example:
        >>> per_class_report([0, 1, 1], [0, 1, 0], ["a", "b"])["b"]
        {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'support': 2}
    """
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        np.asarray(y_true), np.asarray(y_pred), labels=labels, zero_division=0
    )
    return {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(label_names)
    }


def format_report(report: dict[str, dict[str, float]]) -> str:
    """The per-class report as a fixed-width text table (like scikit-learn's).

    Example:
        >>> row = {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2}
        >>> print(format_report({"joy": row}))
        class  precision  recall      f1  support
        joy       1.0000  0.5000  0.6670        2
    """
    width = max([len("class")] + [len(name) for name in report]) + 2
    lines = [f"{'class':<{width}}{'precision':>9}{'recall':>8}{'f1':>8}{'support':>9}"]
    for name, row in report.items():
        lines.append(f"{name:<{width}}{row['precision']:>9.4f}{row['recall']:>8.4f}"
                     f"{row['f1']:>8.4f}{row['support']:>9d}")
    return "\n".join(lines)


def per_label_report(targets: np.ndarray, predicted: np.ndarray,
                     label_names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1, support and confusion counts of each label, in id order.

    Example:
        >>> per_label_report(np.array([[1], [0]]), np.array([[1], [1]]), ["joy"])["joy"]["fp"]
        1
    """
    truth, guess = np.asarray(targets) > 0.5, np.asarray(predicted).astype(bool)
    report = {}
    for i, name in enumerate(label_names):
        tp = int((truth[:, i] & guess[:, i]).sum())
        fp = int((~truth[:, i] & guess[:, i]).sum())
        fn = int((truth[:, i] & ~guess[:, i]).sum())
        tn = int(len(truth) - tp - fp - fn)
        report[name] = {
            "precision": tp / (tp + fp) if tp + fp else 0.0,
            "recall": tp / (tp + fn) if tp + fn else 0.0,
            "f1": float(f1_from_counts(np.array(tp), np.array(fp), np.array(fn))),
            "support": tp + fn, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        }
    return report


# endregion
