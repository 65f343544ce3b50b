"""Pairs of labelled texts for contrastive tuning: SetFit's sampling, and all pairs of a batch.

Every pair of training texts is formed once (each text with itself included, SetFit's
``combinations_with_replacement``) and shuffled with the seed. A pair is *positive* (target
cosine 1) when its texts share a label (any label, for multi-label data) and *negative* (target
0) otherwise. SetFit's default "oversampling" then takes as many positives as there are
negatives, cycling through the fewer kind, and alternates the two: at 8 texts per label and 6
labels, 216 distinct positives and 960 negatives give 960 + 960 = 1,920 pairs. The number of
pairs grows with the square of the texts (122,880 at 64 per label), so ``max_pairs`` caps it:
the default cap is 40 pairs per text (SetFit's paper draws R = 20 positive and 20 negative pairs
per text), which leaves 8 per label untouched and keeps 64 per label at 15,360.

Each step of SetFit's sampling encodes the texts of 16 pairs, about 28 distinct texts, for 16
pairs. ``in_batch_plan`` takes every pair of a step's texts instead (32 texts: 496 pairs),
positives and negatives weighing half the loss each, as oversampling balances them: far more
pairs for the same encoder work, which is what keeps 64 texts per label within minutes on two
cores. ``oversampling_plan`` and ``in_batch_plan`` give phase 1 its batches, step by step.

Example:
    >>> pairs = contrastive_pairs(np.array([0, 0, 1, 1]), seed=0)
    >>> len(pairs), int(pairs.targets.sum()), pairs.distinct_positives, pairs.distinct_negatives
    (12, 6, 6, 4)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional

import numpy as np

# Pairs per training text when no cap is given: SetFit's paper draws R = 20 positive and 20
# negative pairs for every text.
PAIRS_PER_TEXT = 40
SAMPLINGS = ("in_batch", "oversampling")
# In-batch sampling when no steps are given: each text takes part in this many steps, at most
# IN_BATCH_MAX_STEPS steps an epoch (measured with benchmarks/bench_fewshot.py).
IN_BATCH_PASSES = 32
IN_BATCH_MAX_STEPS = 200


@dataclass(frozen=True)
class Pairs:
    """Pairs of text indices with their target cosines, in training order.

    Attributes:
        left, right: int64 arrays ``[pairs]``. Indices into the training texts.
        targets: float32 array ``[pairs]``. 1.0 for a positive pair, 0.0 for a negative one.
        distinct_positives, distinct_negatives: int. How many different pairs of each kind the
            texts allow (before oversampling and the cap).
    """

    left: np.ndarray
    right: np.ndarray
    targets: np.ndarray
    distinct_positives: int
    distinct_negatives: int

    def __len__(self) -> int:
        return len(self.targets)

    def shuffled(self, seed: int) -> "Pairs":
        """The same pairs in another order (one epoch's order).

        Example:
            >>> pairs = contrastive_pairs(np.array([0, 1, 1]), seed=0)
            >>> sorted(pairs.shuffled(3).targets.tolist()) == sorted(pairs.targets.tolist())
            True
        """
        order = np.random.RandomState(seed).permutation(len(self))
        return Pairs(self.left[order], self.right[order], self.targets[order],
                     self.distinct_positives, self.distinct_negatives)


def contrastive_pairs(labels: Any, *, multi_label: bool = False,
                      max_pairs: Optional[int] = None, seed: int = 42) -> Pairs:
    """SetFit's oversampled pairs of ``labels``' texts, at most ``max_pairs`` of them.

    Args:
        labels: array-like. One label id per text ``[texts]``, or multi-hot rows
            ``[texts, labels]`` when ``multi_label``.
        multi_label: bool. A pair is positive when its texts share at least one label.
        max_pairs: int, optional. The most pairs (rounded down to an even number, half of
            each kind); default ``PAIRS_PER_TEXT`` per text. 0 or None with ``max_pairs=0``
            is refused.
        seed: int. Shuffles the distinct pairs before they are taken.

    Returns:
        ``Pairs``: positives and negatives alternate, as many of each; each distinct pair of a
        kind is used either ``k`` or ``k + 1`` times for some ``k``.

    Raises:
        ValueError: fewer than two texts, no negative pair (every text shares a label), or a
            cap below 2.

    Example:
        >>> pairs = contrastive_pairs(np.repeat(np.arange(6), 8))  # 8 texts per label
        >>> len(pairs), pairs.distinct_positives, pairs.distinct_negatives
        (1920, 216, 960)
        >>> len(contrastive_pairs(np.repeat(np.arange(6), 64)))  # capped: 40 per text
        15360
    """
    labels = np.asarray(labels)
    count = len(labels)
    if count < 2:
        raise ValueError(f"contrastive pairs need at least two texts. Received: texts={count}")
    cap = PAIRS_PER_TEXT * count if max_pairs is None else int(max_pairs)
    if cap < 2:
        raise ValueError(f"max_pairs must be at least 2. Received: max_pairs={max_pairs!r}")
    left, right = np.triu_indices(count, 0)
    order = np.random.RandomState(seed).permutation(len(left))
    left, right = left[order], right[order]
    if multi_label:
        same = (labels[left].astype(bool) & labels[right].astype(bool)).any(axis=1)
    else:
        same = labels[left] == labels[right]
    positives = np.flatnonzero(same)
    negatives = np.flatnonzero(~same)
    if len(negatives) == 0:
        raise ValueError("contrastive pairs need texts of different labels: every pair shares a "
                         f"label. Received: labels={sorted(set(map(str, labels.tolist())))}")
    per_kind = min(max(len(positives), len(negatives)), cap // 2)
    chosen = np.empty(2 * per_kind, np.int64)
    chosen[0::2] = positives[np.arange(per_kind) % len(positives)]
    chosen[1::2] = negatives[np.arange(per_kind) % len(negatives)]
    targets = np.tile(np.array([1.0, 0.0], np.float32), per_kind)
    return Pairs(left[chosen].astype(np.int64), right[chosen].astype(np.int64), targets,
                 len(positives), len(negatives))


@dataclass(frozen=True)
class PairBatch:
    """One step's pairs: the distinct texts they use, once each, and the pairs as positions.

    Attributes:
        texts: int64 array. Indices of the distinct training texts of the batch.
        left, right: int32 arrays. Positions in ``texts`` of each pair's two texts.
        targets: float32 array. The pairs' target cosines.
        weights: float32 array. Each pair's share of the loss (they sum to 1).
    """

    texts: np.ndarray
    left: np.ndarray
    right: np.ndarray
    targets: np.ndarray
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.targets):
            count = max(len(self.targets), 1)
            object.__setattr__(self, "weights", np.full(len(self.targets), 1.0 / count,
                                                        np.float32))


def pair_batches(pairs: Pairs, batch_size: int, start: int = 0) -> Iterator[PairBatch]:
    """Consecutive batches of ``batch_size`` pairs from batch ``start`` on, each text once.

    A text that several pairs of a batch share is encoded once for all of them: the loss and
    its gradient are those of encoding it once per pair, for less work (at 8 texts per label a
    batch of 16 pairs holds about 24 distinct texts, not 32).

    Example:
        >>> pairs = contrastive_pairs(np.array([0, 0, 1]), seed=0)
        >>> batch = next(pair_batches(pairs, 4))
        >>> bool((batch.texts[batch.left] == pairs.left[:4]).all())
        True
    """
    for begin in range(start * batch_size, len(pairs), batch_size):
        end = begin + batch_size
        texts, positions = np.unique(np.concatenate([pairs.left[begin:end],
                                                     pairs.right[begin:end]]),
                                     return_inverse=True)
        half = len(positions) // 2
        yield PairBatch(texts, positions[:half].astype(np.int32),
                        positions[half:].astype(np.int32), pairs.targets[begin:end])


def steps_per_epoch(pairs: Pairs, batch_size: int) -> int:
    """Batches in one pass over ``pairs`` (the last one may be smaller).

    Example:
        >>> steps_per_epoch(contrastive_pairs(np.repeat(np.arange(6), 8)), 16)
        120
    """
    return -(-len(pairs) // batch_size)


@dataclass(frozen=True)
class PairPlan:
    """Phase 1's batches: how many steps an epoch has, and each epoch's batches from any step.

    Attributes:
        sampling: str. ``oversampling`` (SetFit's) or ``in_batch``.
        steps_per_epoch: int.
        pairs_per_epoch: int. Pairs the loss sees in one epoch.
        describe: dict. The plan's particulars, for the run record.
        batches: callable ``(epoch, first_step) -> iterator of PairBatch``.
    """

    sampling: str
    steps_per_epoch: int
    pairs_per_epoch: int
    describe: dict
    batches: Callable[[int, int], Iterator[PairBatch]]


def oversampling_plan(labels: Any, *, multi_label: bool = False, max_pairs: Optional[int] = None,
                      batch_size: int = 16, seed: int = 42) -> PairPlan:
    """SetFit's plan: ``contrastive_pairs``, reshuffled every epoch, ``batch_size`` a step.

    Example:
        >>> plan = oversampling_plan(np.repeat(np.arange(6), 8))
        >>> plan.steps_per_epoch, plan.pairs_per_epoch
        (120, 1920)
    """
    pairs = contrastive_pairs(labels, multi_label=multi_label, max_pairs=max_pairs, seed=seed)
    return PairPlan(
        "oversampling", steps_per_epoch(pairs, batch_size), len(pairs),
        {"sampling": "oversampling", "pairs_per_epoch": len(pairs), "pair_batch_size": batch_size,
         "distinct_pairs": {"positive": pairs.distinct_positives,
                            "negative": pairs.distinct_negatives}},
        lambda epoch, first: pair_batches(pairs.shuffled(seed * 1000 + epoch), batch_size,
                                          first))


def in_batch_plan(labels: Any, *, multi_label: bool = False, texts_per_step: int = 32,
                  steps: Optional[int] = None, seed: int = 42) -> PairPlan:
    """Every pair of each step's texts (each with itself left out), positives and negatives
    weighing half the loss each (all of it, when a step has one kind only).

    Texts are taken in a random order, one permutation after another, so that every text takes
    part in as many steps as any other, give or take one.

    Args:
        labels: label ids ``[texts]`` or multi-hot rows ``[texts, labels]``.
        multi_label: bool. A pair is positive when its texts share a label.
        texts_per_step: int. Texts per step (all of them when there are fewer).
        steps: int, optional. Steps per epoch; default ``IN_BATCH_PASSES`` steps per text,
            at most ``IN_BATCH_MAX_STEPS``.
        seed: int. The orders.

    Example:
        >>> plan = in_batch_plan(np.repeat(np.arange(6), 10))
        >>> plan.steps_per_epoch, plan.pairs_per_epoch
        (60, 29760)
        >>> batch = next(plan.batches(0, 0))
        >>> len(batch.texts), len(batch.targets), round(float(batch.weights.sum()), 6)
        (32, 496, 1.0)
    """
    labels = np.asarray(labels)
    count = len(labels)
    if count < 2:
        raise ValueError(f"contrastive pairs need at least two texts. Received: texts={count}")
    size = min(int(texts_per_step), count)
    if size < 2:
        raise ValueError(f"texts_per_step must be at least 2. Received: texts_per_step="
                         f"{texts_per_step}")
    if steps is None:
        steps = min(IN_BATCH_MAX_STEPS, -(-IN_BATCH_PASSES * count // size))
    left, right = np.triu_indices(size, 1)

    def batches(epoch: int, first: int) -> Iterator[PairBatch]:
        for step, texts in enumerate(_text_steps(count, size, steps, [seed, epoch])):
            if step < first:
                continue
            chosen = labels[texts]
            if multi_label:
                same = (chosen[left].astype(bool) & chosen[right].astype(bool)).any(axis=1)
            else:
                same = chosen[left] == chosen[right]
            positives, negatives = int(same.sum()), int((~same).sum())
            kinds = (positives > 0) + (negatives > 0)
            weights = np.where(same, 1.0 / max(positives, 1), 1.0 / max(negatives, 1)) / kinds
            yield PairBatch(texts.astype(np.int64), left.astype(np.int32),
                            right.astype(np.int32), same.astype(np.float32),
                            weights.astype(np.float32))

    pairs = steps * len(left)
    return PairPlan("in_batch", int(steps), int(pairs),
                    {"sampling": "in_batch", "pairs_per_epoch": int(pairs),
                     "texts_per_step": size}, batches)


def _text_steps(count: int, size: int, steps: int, seed: Any) -> Iterator[np.ndarray]:
    """``steps`` sorted sets of ``size`` distinct texts out of ``count``, taken from one random
    permutation after another; a text that would come twice in a step waits for the next."""
    rng = np.random.default_rng(seed)
    queue: list[int] = []
    for _ in range(steps):
        step: list[int] = []
        waiting: list[int] = []
        while len(step) < size:
            if not queue:
                queue = rng.permutation(count).tolist()
            text = queue.pop(0)
            (waiting if text in step else step).append(text)
        queue = waiting + queue
        yield np.sort(np.asarray(step, np.int64))
