"""Which labels are likely wrong: confident learning on out-of-fold probabilities (cleanlab).

Confident learning (Northcutt et al., 2021) estimates, from out-of-sample probabilities, how
many texts of each given label truly belong to each other label (the confident joint), and
flags that many texts in each such cell, the least likely first. cleanlab implements it:
``cleanlab.filter.find_label_issues`` for single-label data, and
``cleanlab.multilabel_classification.filter.find_label_issues`` (one-vs-rest per label) for
multi-label data. The flagged texts are ranked by their label quality score (the out-of-fold
probability of the given label, cleanlab's ``self_confidence``: lower is more suspect).

Example:
    >>> probabilities = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.05, 0.95]])
    >>> issues = rank_label_issues(probabilities, [0, 0, 1, 1, 0], Task(("a", "b")))
    >>> issues.rows.tolist(), issues.suggested[0]
    ([4], (1,))
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from tfemotion.task import Task

# What a multi-label model's probability must reach for the label to be suggested.
MULTI_LABEL_THRESHOLD = 0.5


@dataclass(frozen=True)
class LabelIssues:
    """The flagged texts, most suspect first.

    Attributes:
        rows: indices into the training split, ranked (rank 1 first).
        quality: the label quality score of each flagged text (lower: more likely wrong).
        given: the given label ids of each flagged text (one for single-label data).
        suggested: the label ids the out-of-fold model suggests instead, for each.
        quality_all: the label quality score of every text (what ranks them).
    """

    rows: np.ndarray
    quality: np.ndarray
    given: list[tuple[int, ...]]
    suggested: list[tuple[int, ...]]
    quality_all: np.ndarray


def rank_label_issues(probabilities: np.ndarray, labels: Sequence[Any], task: Task,
                      filter_by: str = "prune_by_noise_rate") -> LabelIssues:
    """Flag and rank the texts whose given label confident learning finds likely wrong.

    Args:
        probabilities: ``[texts, num_labels]`` out-of-fold probabilities (softmax rows for
            single-label data, a sigmoid per label for multi-label data).
        labels: the given label id of each text, or its list of ids (multi-label).
        task: Task of the data.
        filter_by: cleanlab's rule (``tfemotion.config.AUDIT_FILTERS``).

    Returns:
        The ``LabelIssues``.

    Raises:
        ValueError: probabilities of the wrong shape, or missing (NaN) for some texts.

    Example:
        >>> probabilities = np.array([[0.9, 0.1], [0.2, 0.8]] * 6 + [[0.9, 0.1]])
        >>> issues = rank_label_issues(probabilities, [[0], [1]] * 6 + [[1]],
        ...                            Task(("a", "b"), "multi_label"))
        >>> issues.rows.tolist(), issues.suggested
        ([12], [(0,)])
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    _check(probabilities, labels, task)
    if task.multi_label:
        given = [tuple(sorted(int(i) for i in row)) for row in labels]
        rows, quality = _multi_label_issues(probabilities, given, task, filter_by)
        suggested = [_suggested_set(probabilities[i], given[i]) for i in rows]
    else:
        ids = np.asarray(labels, dtype=np.int64)
        given = [(int(i),) for i in ids]
        rows, quality = _single_label_issues(probabilities, ids, filter_by)
        suggested = [(_other_best(probabilities[i], int(ids[i])),) for i in rows]
    return LabelIssues(rows=rows, quality=quality[rows], given=[given[i] for i in rows],
                       suggested=suggested, quality_all=quality)


def _check(probabilities: np.ndarray, labels: Sequence[Any], task: Task) -> None:
    if probabilities.shape != (len(labels), task.num_labels):
        raise ValueError(f"probabilities must be [texts, labels] = [{len(labels)}, "
                         f"{task.num_labels}]. Received: shape={probabilities.shape}")
    missing = np.flatnonzero(np.isnan(probabilities).any(axis=1))
    if missing.size:
        raise ValueError(f"{missing.size} text(s) have no out-of-fold probability (the first: "
                         f"row {int(missing[0])}): every fold must have predicted its texts")


def _single_label_issues(probabilities: np.ndarray, ids: np.ndarray,
                         filter_by: str) -> tuple[np.ndarray, np.ndarray]:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    # cleanlab wants rows that sum to 1 to the float's precision.
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    quality = get_label_quality_scores(ids, probabilities, method="self_confidence")
    with warnings.catch_warnings():  # a label absent from the data is named, not an error
        warnings.simplefilter("ignore", UserWarning)
        flagged = find_label_issues(ids, probabilities, filter_by=filter_by)
    return _ranked(np.flatnonzero(flagged), quality), quality


def _multi_label_issues(probabilities: np.ndarray, given: list[tuple[int, ...]], task: Task,
                        filter_by: str) -> tuple[np.ndarray, np.ndarray]:
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    lists = [list(row) for row in given]
    quality = get_label_quality_scores(lists, probabilities)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        flagged = find_label_issues(lists, probabilities, filter_by=_multi_label_filter(filter_by))
    return _ranked(np.flatnonzero(flagged), quality), quality


def _multi_label_filter(filter_by: str) -> str:
    """cleanlab's multi-label finder has no ``predicted_neq_given``; its nearest is its own
    ``confident_learning`` per label."""
    return "confident_learning" if filter_by == "predicted_neq_given" else filter_by


def _ranked(rows: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """``rows`` by quality score, lowest first (ties: the earlier text first)."""
    return rows[np.argsort(quality[rows], kind="stable")]


def _other_best(row: np.ndarray, given: int) -> int:
    """The likeliest label other than the given one.

    Example:
        >>> _other_best(np.array([0.5, 0.2, 0.3]), 0)
        2
    """
    others = row.copy()
    others[given] = -np.inf
    return int(np.argmax(others))


def _suggested_set(row: np.ndarray, given: tuple[int, ...]) -> tuple[int, ...]:
    """The labels whose probability reaches the threshold; if that is the given set, the
    given set with the label the model disagrees with most switched.

    Example:
        >>> _suggested_set(np.array([0.9, 0.7, 0.1]), (0,))
        (0, 1)
        >>> _suggested_set(np.array([0.9, 0.45, 0.1]), (0,))
        (0, 1)
    """
    chosen = tuple(int(i) for i in np.flatnonzero(row >= MULTI_LABEL_THRESHOLD))
    if chosen != tuple(given):
        return chosen
    target = np.zeros(len(row))
    target[list(given)] = 1.0
    switched = int(np.argmax(np.abs(target - row)))  # the largest disagreement
    return tuple(sorted(set(given) ^ {switched}))
