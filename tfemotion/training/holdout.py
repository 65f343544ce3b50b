"""A validation split held out of the training split, for data that comes without one.

Fine-tuning chooses its best epoch (and a multi-label run its decision thresholds) on a
validation split. When the data has none, ``hold_out`` sets a share of the training texts
aside, stratified by label for single-label data (every label with two texts or more gives at
least one, and keeps at least one), at random for multi-label data; the rest trains.

Example:
    >>> train, held, note = hold_out(splits["train"], task, 0.1, seed=0)
    >>> len(train) + len(held) == len(splits["train"]), sorted(set(held["label"]))
    (True, [0, 1, 2, 3, 4, 5])
    >>> note.split(": ")[0].split(" (")[1]
    '10%, stratified by label, seed 0)'
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tfemotion.task import Task


def hold_out(train: Any, task: Task, share: float, seed: int = 42) -> tuple[Any, Any, str]:
    """Split ``train`` into the texts that train and the texts that validate.

    Args:
        train: datasets.Dataset. The training split (``label``: ids, or lists of ids).
        task: Task. Single-label data is stratified by label.
        share: float in (0, 1). Share of the texts held out.
        seed: int. Which texts.

    Returns:
        ``(kept, held_out, note)``: two Datasets, in the training split's order, and one line
        for the run record saying what was held out.

    Raises:
        ValueError: fewer than two texts, or a share outside (0, 1).
    """
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1). Received: share={share!r}")
    if len(train) < 2:
        raise ValueError("holding out a validation share needs at least two training texts. "
                         f"Received: texts={len(train)}")
    rng = np.random.default_rng(seed)
    if task.multi_label:
        count = min(max(1, round(share * len(train))), len(train) - 1)
        held = rng.choice(len(train), count, replace=False)
        how = "at random (multi-label)"
    else:
        labels = np.asarray(train["label"])
        held = np.concatenate([_some_of(np.flatnonzero(labels == label), share, rng)
                               for label in np.unique(labels)])
        how = "stratified by label"
    chosen = np.zeros(len(train), bool)
    chosen[held] = True
    note = (f"held out {int(chosen.sum())} of the {len(train)} training texts "
            f"({share:.0%}, {how}, seed {seed}): the data has no validation split")
    return (train.select(np.flatnonzero(~chosen)), train.select(np.flatnonzero(chosen)), note)


def _some_of(rows: np.ndarray, share: float, rng: Any) -> np.ndarray:
    """About ``share`` of ``rows``: at least one and not all, when there are two or more."""
    if len(rows) < 2:
        return rows[:0]
    count = min(max(1, round(share * len(rows))), len(rows) - 1)
    return rng.choice(rows, count, replace=False)
