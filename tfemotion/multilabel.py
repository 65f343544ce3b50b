"""Multi-label decisions: multi-hot targets, per-example loss, tuned thresholds, metrics.

A multi-label classifier gives each label its own sigmoid probability; a label is predicted
when its probability reaches the label's decision threshold. The thresholds are tuned on the
validation split after training (each label's maximises that label's F1; a global one,
maximising micro F1, stands in for labels the validation split never shows), recorded in the
run and built into the export.

Example:
    >>> import numpy as np
    >>> metrics = multilabel_metrics(np.array([[1, 0], [1, 1]]), np.array([[1, 0], [1, 0]]))
    >>> metrics["f1_micro"], metrics["subset_accuracy"], metrics["hamming_loss"]
    (0.8, 0.5, 0.25)
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

# Candidate thresholds: 0.05, 0.06, ..., 0.95.
THRESHOLD_GRID = tuple(round(0.05 + 0.01 * i, 2) for i in range(91))
DEFAULT_THRESHOLD = 0.5


def is_multi_label(dataset: Any) -> bool:
    """Whether a loaded ``Dataset`` or ``DatasetDict`` gives each text a list of labels.

    Example:
        >>> is_multi_label(load_splits(DataConfig(source="go_emotions.jsonl")))  # doctest: +SKIP
        True
    """
    from datasets import Sequence

    first = next(iter(dataset.values())) if hasattr(dataset, "values") else dataset
    return isinstance(first.features["label"], Sequence)


def multi_hot(label_lists: Sequence[Sequence[int]], num_labels: int) -> Any:
    """``[texts, num_labels]`` float32 array: 1 where a text carries the label.

    Example:
        >>> multi_hot([[0, 2], []], 3).tolist()
        [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    """
    out = np.zeros((len(label_lists), num_labels), np.float32)
    for row, ids in enumerate(label_lists):
        out[row, list(ids)] = 1.0
    return out


def with_multi_hot_labels(dataset: Any, num_labels: int) -> Any:
    """A copy of a ``Dataset``/``DatasetDict`` whose ``label`` lists became float32 vectors.

    Example:
        >>> from datasets import Dataset
        >>> with_multi_hot_labels(Dataset.from_dict({"label": [[0, 2]]}), 3)[0]["label"]
        [1.0, 0.0, 1.0]
    """
    from datasets import Sequence, Value

    def encode(batch: dict[str, list]) -> dict[str, list]:
        return {"label": multi_hot(batch["label"], num_labels).tolist()}

    return dataset.map(encode, batched=True,
                       features=_features_with_label(dataset, Sequence(Value("float32"),
                                                                       length=num_labels)),
                       desc="Multi-hot labels")


def _features_with_label(dataset: Any, feature: Any) -> Any:
    features = (next(iter(dataset.values())) if hasattr(dataset, "values") else dataset).features
    features = features.copy()
    features["label"] = feature
    return features


def is_multi_hot(dataset: Any) -> bool:
    """Whether a split's ``label`` column holds multi-hot vectors (a multi-label split).

    Example:
        >>> from datasets import Dataset
        >>> is_multi_hot(Dataset.from_dict({"label": [0, 1]}))
        False
    """
    from datasets import Sequence

    return isinstance(dataset.features.get("label"), Sequence)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, stable for large magnitudes.

    Example:
        >>> sigmoid(np.array([0.0, 1000.0, -1000.0])).tolist()
        [0.5, 1.0, 0.0]
    """
    logits = np.asarray(logits, dtype=np.float64)
    return np.where(logits >= 0, 1 / (1 + np.exp(-np.abs(logits))),
                    np.exp(-np.abs(logits)) / (1 + np.exp(-np.abs(logits))))


def per_example_bce(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of each example, averaged over its labels (what
    ``BinaryCrossentropy(from_logits=True)`` averages), computed stably in float64.

    Example:
        >>> per_example_bce(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]])).round(4).tolist()
        [0.6931]
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if logits.shape != targets.shape or logits.ndim != 2:
        raise ValueError("logits and targets must both be [examples, labels]. Received: "
                         f"logits.shape={logits.shape}, targets.shape={targets.shape}")
    losses = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return losses.mean(axis=1)


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
    per_label_f1 = _f1(tp, fp, fn)
    micro_f1 = _f1(tp.sum(axis=1), fp.sum(axis=1), fn.sum(axis=1))
    global_threshold = float(candidates[int(np.argmax(micro_f1))])
    best = candidates[np.argmax(per_label_f1, axis=0)]
    thresholds = np.where(truth.any(axis=0), best, global_threshold)
    return [round(float(t), 4) for t in thresholds], round(global_threshold, 4)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


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
            "f1": float(_f1(np.array(tp), np.array(fp), np.array(fn))),
            "support": tp + fn, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
        }
    return report
