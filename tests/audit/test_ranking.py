"""Confident learning on out-of-fold probabilities: planted flips found, ranked, suggested."""

from __future__ import annotations

import numpy as np
import pytest

from tfemotion.audit.ranking import rank_label_issues
from tfemotion.task import Task

TASK = Task(("sadness", "joy", "love", "anger", "fear", "surprise"))


def _noisy_probabilities(rng, truth: np.ndarray, labels: int, accuracy: float) -> np.ndarray:
    """Probabilities a classifier of about ``accuracy`` would give, with Dirichlet noise: most
    of the mass on the true label; where it errs, a little more on one wrong label than on the
    true one (a fine-tuned model's mistakes are mostly unsure ones)."""
    rows = np.arange(len(truth))
    probabilities = rng.dirichlet(np.ones(labels), len(truth)) * 0.3
    right = rng.random(len(truth)) < accuracy
    wrong = (truth + rng.integers(1, labels, len(truth))) % labels
    probabilities[rows, truth] += np.where(right, 0.7, 0.3)
    probabilities[rows[~right], wrong[~right]] += 0.4
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def _flip(rng, truth: np.ndarray, labels: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    flipped = rng.choice(len(truth), round(share * len(truth)), replace=False)
    given = truth.copy()
    given[flipped] = (truth[flipped] + rng.integers(1, labels, len(flipped))) % labels
    return given, np.sort(flipped)


@pytest.mark.parametrize("seed", range(10))
def test_planted_flips_are_flagged_first_with_their_true_label_suggested(seed):
    """5% flips under a 92%-accurate out-of-fold model (the fine-tuned MiniLM's accuracy on
    the emotion data): over seeds 0-9 precision was 0.94-0.99, recall 0.91-0.98 and the true
    label suggested for 0.94-1.00 of the hits; the test asks 0.85 of each (the issue's goals
    are 0.80 and 0.70)."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 6, 2000)
    given, flipped = _flip(rng, truth, 6, 0.05)
    # A flipped text's model still sees its true label: the probabilities follow the truth.
    probabilities = _noisy_probabilities(rng, truth, 6, 0.92)
    issues = rank_label_issues(probabilities, given, TASK)
    hits = np.isin(issues.rows, flipped)
    assert hits.mean() >= 0.85 and hits.sum() / len(flipped) >= 0.85
    assert list(issues.quality) == sorted(issues.quality)  # rank 1 is the least likely label
    suggested = np.array([s[0] for s in issues.suggested])
    assert (suggested[hits] == truth[issues.rows[hits]]).mean() >= 0.85
    assert all(s != g for s, g in zip(issues.suggested, issues.given))


def test_clean_labels_under_a_confident_model_give_almost_no_flags():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 6, 1000)
    probabilities = np.full((1000, 6), 0.01)
    probabilities[np.arange(1000), truth] = 0.95
    assert len(rank_label_issues(probabilities, truth, TASK).rows) == 0


def test_multi_label_flags_a_missing_and_an_extra_label():
    task = Task(("a", "b", "c"), "multi_label")
    rng = np.random.default_rng(0)
    truth = [tuple(sorted(rng.choice(3, rng.integers(1, 3), replace=False).tolist()))
             for _ in range(300)]
    probabilities = np.full((300, 3), 0.05)
    for i, labels in enumerate(truth):
        probabilities[i, list(labels)] = 0.95
    given = list(truth)
    given[10] = tuple(sorted(set(truth[10]) ^ {next(j for j in range(3) if j not in truth[10])}))
    given[20] = truth[20][:-1] if len(truth[20]) > 1 else tuple(sorted({*truth[20], (truth[20][0]
                                                                                       + 1) % 3}))
    issues = rank_label_issues(probabilities, given, task)
    assert sorted(issues.rows.tolist()) == [10, 20]
    for row, suggested in zip(issues.rows, issues.suggested):
        assert suggested == truth[row]


def test_missing_or_misshapen_probabilities_are_refused():
    probabilities = np.full((4, 6), 1 / 6)
    with pytest.raises(ValueError, match=r"\[4, 6\]. Received: shape=\(4, 5\)"):
        rank_label_issues(probabilities[:, :5], [0, 1, 2, 3], TASK)
    probabilities[2] = np.nan
    with pytest.raises(ValueError, match="1 text.*row 2"):
        rank_label_issues(probabilities, [0, 1, 2, 3], TASK)
