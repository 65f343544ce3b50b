"""Multi-label decisions: a label is predicted when its probability reaches its threshold.

The thresholds are tuned on the validation split after training (each label's maximises that
label's F1; a global one, maximising micro F1, stands in for labels the validation split never
shows), recorded in the run and built into the export.

Example:
    >>> predict_labels(np.array([[0.6, 0.3]]), [0.5, 0.25]).tolist()
    [[True, True]]
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tfemotion.evaluation.metrics import f1_from_counts
from tfemotion.task import DEFAULT_THRESHOLD

# Candidate thresholds: 0.05, 0.06, ..., 0.95.
THRESHOLD_GRID = tuple(round(0.05 + 0.01 * i, 2) for i in range(91))


def predict_labels(probabilities: np.ndarray, thresholds: Any) -> np.ndarray:
    """Boolean ``[examples, labels]``: probability at or above the label's threshold.

    Example:
        >>> predict_labels(np.array([[0.6, 0.3]]), [0.5, 0.25]).tolist()
        [[True, True]]
    """
    return np.asarray(probabilities) >= np.asarray(thresholds, dtype=np.float64)


def tune_thresholds(probabilities: np.ndarray, targets: np.ndarray,
                    grid: Sequence[float] = THRESHOLD_GRID) -> tuple[list[float], float]:
    """Per-label thresholds that maximise each label's F1, and a global one for micro F1.

    Ties go to the threshold nearest 0.5. A label without positive examples in ``targets``
    (its F1 cannot be tuned) gets the global threshold.

    Args:
        probabilities: ``[examples, labels]`` sigmoid outputs on the validation split.
        targets: ``[examples, labels]`` 0/1 gold labels.
        grid: candidate thresholds.

    Returns:
        ``(per_label, global_threshold)``.

    Example:
        >>> probs = np.array([[0.9, 0.2], [0.3, 0.35], [0.8, 0.1]])
        >>> tune_thresholds(probs, np.array([[1, 0], [0, 1], [1, 0]]), grid=[0.25, 0.5])
        ([0.5, 0.25], 0.25)
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    truth = np.asarray(targets) > 0.5
    candidates = np.asarray(sorted(grid, key=lambda t: (abs(t - DEFAULT_THRESHOLD), t)))
    counts = np.empty((3, len(candidates), truth.shape[1]), np.int64)  # tp, fp, fn per grid
    for index, threshold in enumerate(candidates):  # one threshold at a time: bounded memory
        predicted = probabilities >= threshold
        counts[:, index] = [(predicted & truth).sum(axis=0), (predicted & ~truth).sum(axis=0),
                            (~predicted & truth).sum(axis=0)]
    tp, fp, fn = counts
    per_label_f1 = f1_from_counts(tp, fp, fn)
    micro_f1 = f1_from_counts(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
    global_threshold = float(candidates[int(np.argmax(micro_f1))])
    best = candidates[np.argmax(per_label_f1, axis=0)]
    thresholds = np.where(truth.any(axis=0), best, global_threshold)
    return [round(float(t), 4) for t in thresholds], round(global_threshold, 4)
