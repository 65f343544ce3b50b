"""SetFit's pair sampling: counts, balance, the cap, batches that encode each text once."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tfemotion.training.pairs import (PAIRS_PER_TEXT, contrastive_pairs, in_batch_plan,
                                      oversampling_plan, pair_batches, steps_per_epoch)


def _kinds(pairs, labels):
    same = labels[pairs.left] == labels[pairs.right]
    return same, Counter(zip(np.minimum(pairs.left, pairs.right).tolist(),
                             np.maximum(pairs.left, pairs.right).tolist()))


@pytest.mark.parametrize("per_label,labels", [(8, 6), (3, 2), (5, 4)])
def test_oversampling_takes_every_pair_of_the_larger_kind_once_and_cycles_the_other(per_label,
                                                                                   labels):
    y = np.repeat(np.arange(labels), per_label)
    pairs = contrastive_pairs(y, max_pairs=10**9, seed=3)
    texts = len(y)
    negatives = texts * (texts - 1) // 2 - labels * per_label * (per_label - 1) // 2
    positives = labels * per_label * (per_label + 1) // 2  # each text with itself included
    assert (pairs.distinct_negatives, pairs.distinct_positives) == (negatives, positives)
    assert len(pairs) == 2 * max(negatives, positives)
    same, counts = _kinds(pairs, y)
    assert (pairs.targets == same).all()
    assert same[0::2].all() and not same[1::2].any()  # alternating, half and half
    negative_uses = [n for pair, n in counts.items() if y[pair[0]] != y[pair[1]]]
    positive_uses = [n for pair, n in counts.items() if y[pair[0]] == y[pair[1]]]
    assert len(negative_uses) == negatives and len(positive_uses) == positives
    fewer, more = sorted((negative_uses, positive_uses), key=len)
    assert max(fewer) - min(fewer) <= 1  # the fewer kind is cycled evenly
    assert set(more) == {1}


def test_setfit_count_at_8_per_label_and_the_cap_at_64():
    assert len(contrastive_pairs(np.repeat(np.arange(6), 8))) == 1920
    capped = contrastive_pairs(np.repeat(np.arange(6), 64), seed=0)
    assert len(capped) == PAIRS_PER_TEXT * 384 and capped.targets.sum() == len(capped) / 2
    assert len(contrastive_pairs(np.repeat(np.arange(6), 64), max_pairs=101)) == 100


def test_multi_label_pairs_are_positive_when_the_texts_share_a_label():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1]])
    pairs = contrastive_pairs(y, multi_label=True, max_pairs=10**9)
    shared = (y[pairs.left] & y[pairs.right]).any(axis=1)
    assert (pairs.targets == shared).all() and pairs.targets.sum() == len(pairs) / 2


def test_pairs_refuse_data_without_two_labels():
    with pytest.raises(ValueError, match="texts of different labels"):
        contrastive_pairs(np.zeros(5, int))
    with pytest.raises(ValueError, match="at least two texts"):
        contrastive_pairs(np.zeros(1, int))


def test_pair_batches_encode_each_text_once_and_cover_every_pair_in_order():
    pairs = contrastive_pairs(np.repeat(np.arange(3), 4), seed=1)
    batches = list(pair_batches(pairs, 7))
    assert len(batches) == steps_per_epoch(pairs, 7)
    left = np.concatenate([b.texts[b.left] for b in batches])
    right = np.concatenate([b.texts[b.right] for b in batches])
    assert (left == pairs.left).all() and (right == pairs.right).all()
    assert all(len(set(b.texts.tolist())) == len(b.texts) for b in batches)
    assert [len(b.targets) for b in pair_batches(pairs, 7, start=len(batches) - 1)] == [
        len(pairs) - 7 * (len(batches) - 1)]


def test_in_batch_steps_take_every_pair_of_their_texts_half_positive_half_negative():
    y = np.repeat(np.arange(3), 7)
    plan = in_batch_plan(y, texts_per_step=6, steps=14, seed=5)
    batches = list(plan.batches(0, 0))
    assert len(batches) == plan.steps_per_epoch == 14 and plan.pairs_per_epoch == 14 * 15
    for batch in batches:
        assert len(set(batch.texts.tolist())) == 6 and len(batch.targets) == 15
        same = y[batch.texts][batch.left] == y[batch.texts][batch.right]
        assert (batch.targets == same).all() and (batch.left < batch.right).all()
        if same.any() and (~same).any():
            assert batch.weights[same].sum() == pytest.approx(0.5)
            assert batch.weights[~same].sum() == pytest.approx(0.5)
        assert batch.weights.sum() == pytest.approx(1.0)
    uses = np.bincount(np.concatenate([b.texts for b in batches]), minlength=len(y))
    assert uses.max() - uses.min() <= 1  # every text in as many steps, give or take one


def test_plans_resume_at_any_step_with_the_same_batches():
    for plan in (in_batch_plan(np.repeat(np.arange(3), 5), texts_per_step=4, steps=9),
                 oversampling_plan(np.repeat(np.arange(3), 5), batch_size=4)):
        every = list(plan.batches(1, 0))
        rest = list(plan.batches(1, 4))
        assert [b.texts.tolist() for b in every[4:]] == [b.texts.tolist() for b in rest]
        assert len(every) == plan.steps_per_epoch


def test_in_batch_steps_default_to_32_per_text_at_most_200():
    assert in_batch_plan(np.repeat(np.arange(6), 10)).steps_per_epoch == 60
    assert in_batch_plan(np.repeat(np.arange(6), 66)).steps_per_epoch == 200
