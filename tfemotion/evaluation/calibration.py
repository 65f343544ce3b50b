"""How far a classifier's probabilities can be trusted, and temperature scaling to mend them.

Fine-tuned transformers are over-confident: among texts answered with probability 0.95, fewer
than 95% are right. Temperature scaling (Guo et al. 2017, "On Calibration of Modern Neural
Networks") divides the logits by one number ``T`` fitted on held-out logits by negative
log-likelihood; ``T > 1`` softens every probability and, since dividing by a positive number
keeps the order of a row, a single-label model's argmax (its label) never changes. A multi-label
model gets one ``T`` per label (each label is its own binary classifier, a sigmoid).

The figures:

* expected calibration error (ECE): the probabilities cut into ``ECE_BINS`` (15) equal-width
  bins, ``sum over bins of |bin| / n * |outcome rate - mean probability|``; single-label over
  each text's top probability (outcome: the label is right), multi-label per label over that
  label's probability (outcome: the text carries the label), and their mean;
* negative log-likelihood (NLL): the cross-entropy of the true label (multi-label: the binary
  cross-entropy averaged over texts and labels, as Keras' training loss averages it);
* Brier score: single-label the squared distance between the probability vector and the one-hot
  truth, summed over labels (0 to 2); multi-label the squared error averaged over texts and
  labels (0 to 1).

Example:
    >>> logits = np.array([[4.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    >>> labels = np.array([0, 1, 1])
    >>> round(fit_temperature(logits, labels), 2) > 1.0  # one confident mistake: soften
    True
    >>> temperature_scaled(logits, [2.0]).tolist()
    [[2.0, 0.0], [1.5, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import numpy as np

from tfemotion.evaluation.outputs import per_example_bce, per_example_loss, sigmoid, softmax
from tfemotion.task import Task

# Equal-width bins of the expected calibration error (the common choice since Guo et al. 2017).
ECE_BINS = 15
# The temperature is searched for in this range, on a log scale.
TEMPERATURE_RANGE = (0.05, 20.0)
# A fitted temperature is kept to this many decimals (the records and the export hold it).
TEMPERATURE_DECIMALS = 4


# region Probabilities at a temperature


def temperature_scaled(logits: Any, temperatures: Optional[Sequence[float]]) -> np.ndarray:
    """``logits / T`` in float64: one ``T`` for every label, or one per label; None: unchanged.

    Example:
        >>> temperature_scaled(np.array([[2.0, -2.0]]), [2.0, 0.5]).tolist()
        [[1.0, -4.0]]
    """
    logits = np.asarray(logits, dtype=np.float64)
    if temperatures is None:
        return logits
    values = np.asarray(temperatures, dtype=np.float64).reshape(-1)
    if values.size not in (1, logits.shape[-1]) or not np.all(values > 0):
        raise ValueError(f"temperatures must be positive, one for all labels or one per label "
                         f"({logits.shape[-1]}). Received: temperatures={values.tolist()}")
    return logits / values


def probabilities_of(logits: Any, task: Task,
                     temperatures: Optional[Sequence[float]] = None) -> np.ndarray:
    """Softmax (single-label) or a sigmoid per label (multi-label) of ``logits / T``.

    Example:
        >>> probabilities_of(np.array([[0.0, np.log(3.0)]]), Task(("a", "b"))).round(2).tolist()
        [[0.25, 0.75]]
    """
    scaled = temperature_scaled(logits, temperatures)
    if task.multi_label:
        return sigmoid(scaled)
    return softmax(scaled)


# endregion
# region The figures


def binned_calibration_error(confidences: Any, outcomes: Any, bins: int = ECE_BINS) -> float:
    """``sum over bins of |bin| / n * |mean outcome - mean confidence|``, equal-width bins.

    A bin holds the probabilities in ``((i - 1) / bins, i / bins]`` (the first one also 0).

    Args:
        confidences: ``[n]`` probabilities in [0, 1].
        outcomes: ``[n]`` 0/1 (or boolean): whether what the probability was given to happened.
        bins: int. Number of bins.

    Example:
        >>> # bin (0.6, 0.667]: 0.65 twice, one right -> |0.5 - 0.65|; bin (0.933, 1]: 0.95, right
        >>> round(binned_calibration_error([0.65, 0.65, 0.95], [1, 0, 1]), 4)  # (2*.15 + .05)/3
        0.1167
    """
    confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
    outcomes = np.asarray(outcomes, dtype=np.float64).reshape(-1)
    if confidences.shape != outcomes.shape or confidences.size == 0:
        raise ValueError("confidences and outcomes must be non-empty and of one length. "
                         f"Received: {confidences.shape} and {outcomes.shape}")
    index = np.clip(np.ceil(confidences * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    gap = np.abs(np.bincount(index, outcomes, bins) - np.bincount(index, confidences, bins))
    return float(gap.sum() / count.sum())


def reliability_bins(confidences: Any, outcomes: Any,
                     bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per non-empty bin: mean confidence, outcome rate, count (what a reliability diagram
    draws; the ECE is the count-weighted mean gap between the first two).

    Example:
        >>> [a.tolist() for a in reliability_bins([0.65, 0.65, 0.95], [1, 0, 1])]
        [[0.65, 0.95], [0.5, 1.0], [2, 1]]
    """
    confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
    outcomes = np.asarray(outcomes, dtype=np.float64).reshape(-1)
    index = np.clip(np.ceil(confidences * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(index, minlength=bins)
    kept = count > 0
    return (np.bincount(index, confidences, bins)[kept] / count[kept],
            np.bincount(index, outcomes, bins)[kept] / count[kept], count[kept])


def reliability_points(probabilities: Any, targets: Any, task: Task) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """``(confidences, outcomes)`` a reliability diagram bins: each text's top probability and
    whether its label is right (single-label), or every label's probability of every text and
    whether the text carries it (multi-label, all labels pooled).

    Example:
        >>> [a.tolist() for a in reliability_points(np.array([[0.7, 0.3]]), [1],
        ...                                         Task(("a", "b")))]
        [[0.7], [False]]
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    targets = np.asarray(targets)
    if task.multi_label:
        return probabilities.reshape(-1), targets.reshape(-1) > 0.5
    return probabilities.max(axis=1), probabilities.argmax(axis=1) == targets


def expected_calibration_error(probabilities: Any, targets: Any, task: Task,
                               bins: int = ECE_BINS) -> dict[str, Any]:
    """The ECE of ``task``'s probabilities: over the top probability (single-label), or per
    label and their mean (multi-label).

    Returns:
        ``{"ece": float}``; multi-label adds ``"ece_per_label": {name: float}``
        (``ece`` is their mean).

    Example:
        >>> expected_calibration_error(np.array([[0.9, 0.1], [0.6, 0.4]]), [0, 1],
        ...                            Task(("a", "b")))  # (|1 - .9| + |0 - .6|) / 2
        {'ece': 0.35}
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    targets = np.asarray(targets)
    if not task.multi_label:
        right = probabilities.argmax(axis=1) == targets
        return {"ece": round(binned_calibration_error(probabilities.max(axis=1), right, bins),
                             10)}
    per_label = [binned_calibration_error(probabilities[:, k], targets[:, k] > 0.5, bins)
                 for k in range(task.num_labels)]
    return {"ece": float(np.mean(per_label)),
            "ece_per_label": dict(zip(task.label_names, per_label))}


def negative_log_likelihood(logits: Any, targets: Any, task: Task,
                            temperatures: Optional[Sequence[float]] = None) -> float:
    """Mean cross-entropy of the truth under ``logits / T`` (multi-label: binary cross-entropy
    averaged over texts and labels), computed stably from the logits.

    Example:
        >>> round(negative_log_likelihood(np.array([[0.0, 0.0]]), [1], Task(("a", "b"))), 4)
        0.6931
    """
    scaled = temperature_scaled(logits, temperatures)
    targets = np.asarray(targets)
    if task.multi_label:
        return float(per_example_bce(scaled, targets.astype(np.float64)).mean())
    return float(per_example_loss(scaled, targets).mean())


def brier_score(probabilities: Any, targets: Any, task: Task) -> float:
    """Single-label: mean over texts of ``sum_k (p_k - [k is the label])^2`` (0 to 2);
    multi-label: mean of ``(p - y)^2`` over texts and labels (0 to 1).

    Example:
        >>> brier_score(np.array([[0.75, 0.25]]), [0], Task(("a", "b")))
        0.125
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    targets = np.asarray(targets)
    if task.multi_label:
        return float(np.mean((probabilities - targets.astype(np.float64)) ** 2))
    truth = np.zeros_like(probabilities)
    truth[np.arange(len(targets)), targets.astype(np.int64)] = 1.0
    return float(np.mean(np.sum((probabilities - truth) ** 2, axis=1)))


def calibration_metrics(logits: Any, targets: Any, task: Task,
                        temperatures: Optional[Sequence[float]] = None,
                        bins: int = ECE_BINS) -> dict[str, Any]:
    """ECE, NLL, Brier score and mean top probability (``confidence``) at temperature ``T``.

    Example:
        >>> figures = calibration_metrics(np.array([[2.0, 0.0], [0.0, 2.0]]), [0, 1],
        ...                               Task(("a", "b")))
        >>> sorted(figures), round(figures["ece"], 4)
        (['brier', 'confidence', 'ece', 'nll'], 0.1192)
    """
    probabilities = probabilities_of(logits, task, temperatures)
    confidence = (np.maximum(probabilities, 1 - probabilities).mean() if task.multi_label
                  else probabilities.max(axis=1).mean())
    return {**expected_calibration_error(probabilities, targets, task, bins),
            "nll": negative_log_likelihood(logits, targets, task, temperatures),
            "brier": brier_score(probabilities, targets, task),
            "confidence": float(confidence)}


def calibration_report(logits: Any, targets: Any, task: Task,
                       temperatures: Optional[Sequence[float]]) -> dict[str, Any]:
    """The figures before (``T = 1``) and after temperature scaling (``after`` only when there
    are temperatures), as evaluation writes them.

    Example:
        >>> report = calibration_report(np.array([[3.0, 0.0], [3.0, 0.0]]), [0, 1],
        ...                             Task(("a", "b")), [4.0])
        >>> report["after"]["ece"] < report["before"]["ece"], report["temperatures"]
        (True, [4.0])
    """
    report: dict[str, Any] = {
        "temperatures": None if temperatures is None else [float(t) for t in temperatures],
        "bins": ECE_BINS, "before": calibration_metrics(logits, targets, task)}
    if temperatures is not None:
        report["after"] = calibration_metrics(logits, targets, task, temperatures)
    return report


# endregion
# region Fitting the temperature


def fit_temperature(logits: Any, labels: Any) -> float:
    """The ``T`` that minimises the softmax NLL of ``labels`` under ``logits / T``.

    A bounded one-dimensional search on ``log T`` within ``TEMPERATURE_RANGE`` (scipy's
    ``minimize_scalar``): a few dozen evaluations, milliseconds on thousands of texts.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> true_logits = 3.0 * rng.normal(size=(4000, 4))
        >>> labels = [rng.choice(4, p=p) for p in softmax(true_logits)]
        >>> abs(fit_temperature(2.0 * true_logits, labels) - 2.0) < 0.2  # over-confident 2x
        True
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels).astype(np.int64)
    _check_fit_inputs(logits, labels, logits.ndim == 2 and labels.shape == (len(logits),))
    return _minimise(lambda t: float(per_example_loss(logits / t, labels).mean()))


def fit_binary_temperature(logits: Any, outcomes: Any) -> float:
    """The ``T`` that minimises the binary cross-entropy of ``outcomes`` under
    ``sigmoid(logits / T)`` (one label of a multi-label model); 1.0 when ``outcomes`` are all
    the same (nothing tells a too-sure model from a right one then).

    Example:
        >>> fit_binary_temperature([2.0, -2.0], [1, 1])
        1.0
    """
    logits = np.asarray(logits, dtype=np.float64).reshape(-1)
    outcomes = np.asarray(outcomes, dtype=np.float64).reshape(-1)
    _check_fit_inputs(logits, outcomes, logits.shape == outcomes.shape)
    if outcomes.min() == outcomes.max():
        return 1.0
    column, truth = logits[:, None], outcomes[:, None]
    return _minimise(lambda t: float(per_example_bce(column / t, truth).mean()))


def fit_temperatures(logits: Any, targets: Any, task: Task) -> tuple[float, ...]:
    """One temperature (single-label) or one per label (multi-label), fitted by NLL.

    Example:
        >>> fit_temperatures(np.array([[1.0, -1.0], [-1.0, 1.0]]), np.array([[1, 1], [0, 1]]),
        ...                  Task(("a", "b"), "multi_label"))[1]  # label b is always on: T=1
        1.0
    """
    if task.multi_label:
        targets = np.asarray(targets)
        return tuple(fit_binary_temperature(np.asarray(logits)[:, k], targets[:, k] > 0.5)
                     for k in range(task.num_labels))
    return (fit_temperature(logits, targets),)


def fit_calibration(logits: Any, targets: Any, task: Task) -> dict[str, Any]:
    """Temperatures fitted on held-out logits, the seconds the fit took, and the NLL and ECE
    there before and after (what a run records and prints).

    Example:
        >>> fitted = fit_calibration(np.array([[3.0, 0.0], [3.0, 0.0], [0.0, 3.0]]), [0, 1, 1],
        ...                          Task(("a", "b")))
        >>> fitted["temperatures"][0] > 1, fitted["after"]["nll"] < fitted["before"]["nll"]
        (True, True)
    """
    started = time.perf_counter()
    temperatures = fit_temperatures(logits, targets, task)
    seconds = time.perf_counter() - started
    report = calibration_report(logits, targets, task, temperatures)
    return {"temperatures": temperatures, "seconds": round(seconds, 4), "texts": len(logits),
            "before": report["before"], "after": report["after"]}


def _minimise(nll: Any) -> float:
    from scipy.optimize import minimize_scalar

    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    found = minimize_scalar(lambda log_t: nll(np.exp(log_t)), bounds=(low, high),
                            method="bounded", options={"xatol": 1e-5})
    return round(float(np.exp(found.x)), TEMPERATURE_DECIMALS)


def _check_fit_inputs(logits: np.ndarray, targets: np.ndarray, shapes_agree: bool) -> None:
    if not shapes_agree or len(logits) == 0:
        raise ValueError("fitting a temperature needs non-empty logits and one target per "
                         f"text. Received: logits.shape={logits.shape}, "
                         f"targets.shape={targets.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError("fitting a temperature needs finite logits. Received: "
                         f"{int((~np.isfinite(logits)).sum())} NaN or infinite values")


# endregion
