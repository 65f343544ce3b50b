"""Multi-label decisions and the thresholds tuned on validation."""

from __future__ import annotations

import numpy as np

from tfemotion.evaluation.metrics import multilabel_metrics
from tfemotion.evaluation.thresholds import THRESHOLD_GRID, predict_labels, tune_thresholds


def test_predict_labels_compares_each_label_with_its_own_threshold():
    probabilities = np.array([[0.5, 0.5, 0.2], [0.49, 0.9, 0.1]])
    assert predict_labels(probabilities, [0.5, 0.95, 0.1]).tolist() == [[True, False, True],
                                                                         [False, False, True]]


def test_tuned_thresholds_maximise_each_labels_f1_and_fall_back_to_the_global_one():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, size=(200, 3))
    targets[:, 2] = 0  # a label the validation split never shows
    probabilities = np.clip(0.3 * targets + rng.uniform(0, 0.6, size=targets.shape), 0, 1)
    thresholds, global_threshold = tune_thresholds(probabilities, targets)
    for label in range(2):
        def f1(t):
            return f1_score(targets[:, label], probabilities[:, label] >= t)
        assert thresholds[label] in THRESHOLD_GRID
        assert f1(thresholds[label]) == max(f1(t) for t in THRESHOLD_GRID)
    assert thresholds[2] == global_threshold
    micro = [multilabel_metrics(targets, probabilities >= t)["f1_micro"] for t in THRESHOLD_GRID]
    assert multilabel_metrics(targets, probabilities >= global_threshold)["f1_micro"] == max(micro)
