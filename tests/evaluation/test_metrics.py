"""The figures of a task, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from tfemotion.evaluation.metrics import (classification_metrics, format_report, headline,
                                          multilabel_metrics, per_class_report,
                                          per_label_report, task_metrics)
from tfemotion.task import MULTI_LABEL, Task


def test_classification_metrics_match_scikit_learn():
    from sklearn.metrics import f1_score

    y_true, y_pred = [0, 1, 2, 2, 1, 0, 2], [0, 2, 2, 2, 1, 1, 0]
    metrics = classification_metrics(y_true, y_pred)
    assert metrics["accuracy"] == pytest.approx(4 / 7)
    assert metrics["f1_macro"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    with pytest.raises(ValueError, match="equal length"):
        classification_metrics([0, 1], [0])


def test_per_class_report_matches_scikit_learn_report():
    from sklearn.metrics import classification_report

    y_true, y_pred = [0, 1, 2, 2, 1, 0, 2, 2], [0, 2, 2, 2, 1, 1, 0, 2]
    report = per_class_report(y_true, y_pred, ["a", "b", "c"])
    expected = classification_report(y_true, y_pred, target_names=["a", "b", "c"],
                                     output_dict=True)
    assert list(report) == ["a", "b", "c"]
    for name in report:
        assert report[name]["precision"] == pytest.approx(expected[name]["precision"])
        assert report[name]["f1"] == pytest.approx(expected[name]["f1-score"])
        assert report[name]["support"] == expected[name]["support"]
    assert format_report(report).splitlines()[3].startswith("c ")


def test_per_class_report_lists_classes_never_seen():
    report = per_class_report([0, 0], [0, 0], ["a", "b"])
    assert report["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_multilabel_metrics_match_scikit_learn_and_the_per_label_counts_add_up():
    from sklearn.metrics import f1_score, hamming_loss

    rng = np.random.default_rng(3)
    truth, guess = rng.integers(0, 2, (50, 4)), rng.integers(0, 2, (50, 4))
    metrics = multilabel_metrics(truth, guess)
    assert metrics["f1_micro"] == pytest.approx(f1_score(truth, guess, average="micro"))
    assert metrics["hamming_loss"] == pytest.approx(hamming_loss(truth, guess))
    assert metrics["subset_accuracy"] == pytest.approx((truth == guess).all(axis=1).mean())
    report = per_label_report(truth, guess, ["a", "b", "c", "d"])
    for i, name in enumerate("abcd"):
        row = report[name]
        assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == 50
        assert row["support"] == truth[:, i].sum()


def test_the_task_picks_the_metrics_and_the_headline():
    single, multi = Task(("a", "b")), Task(("a", "b"), MULTI_LABEL)
    assert set(task_metrics(single, [0, 1], [1, 1])) == {"accuracy", "f1_weighted", "f1_macro"}
    figures = task_metrics(multi, np.array([[1, 0]]), np.array([[1, 1]]))
    assert set(figures) == set(multi.headline_metrics)
    result = {**figures, "loss": 0.3, "at_threshold_0.5": figures, "thresholds": {"a": 0.5}}
    assert list(headline(result, multi)) == [*multi.headline_metrics, "at_threshold_0.5"]
