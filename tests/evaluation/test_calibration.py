"""Calibration figures on hand-computed examples, and the temperature fit on known temperatures."""

from __future__ import annotations

import numpy as np
import pytest

from tfemotion.evaluation.calibration import (binned_calibration_error, brier_score,
                                              calibration_metrics, expected_calibration_error,
                                              fit_binary_temperature, fit_calibration,
                                              fit_temperature, fit_temperatures,
                                              negative_log_likelihood, probabilities_of,
                                              reliability_bins, temperature_scaled)
from tfemotion.evaluation.outputs import softmax
from tfemotion.task import MULTI_LABEL, Task

TASK = Task(("a", "b", "c"))
MULTI = Task(("a", "b"), MULTI_LABEL)


def _sampled(seed: int, temperature: float, texts: int = 4000, labels: int = 6):
    """Logits whose softmax the labels are truly drawn from, and the same logits made
    over-confident (multiplied by ``temperature``): the fit should find ``temperature``."""
    rng = np.random.default_rng(seed)
    true_logits = 2.5 * rng.normal(size=(texts, labels))
    probabilities = softmax(true_logits)
    drawn = (probabilities.cumsum(axis=1) > rng.random((texts, 1))).argmax(axis=1)
    return temperature * true_logits, drawn


def test_ece_of_hand_computed_single_label_examples():
    probabilities = np.array([[0.65, 0.30, 0.05],   # bin (0.600, 0.667]: right
                              [0.65, 0.05, 0.30],   # same bin: wrong (label 1)
                              [0.05, 0.95, 0.00],   # bin (0.933, 1]: right
                              [0.40, 0.35, 0.25]])  # bin (0.400, 0.467]: wrong (label 2)
    labels = [0, 1, 1, 2]
    # (2 * |0.5 - 0.65| + |1 - 0.95| + |0 - 0.40|) / 4 = (0.30 + 0.05 + 0.40) / 4
    assert expected_calibration_error(probabilities, labels, TASK)["ece"] == pytest.approx(0.1875)
    # the edges: a bin holds ((i - 1) / 15, i / 15]; 1/15 exactly falls in the first bin
    assert binned_calibration_error([1 / 15, 1 / 15 + 1e-9], [0, 0]) == pytest.approx(
        1 / 15 + 1e-9 / 2)
    assert binned_calibration_error([0.0, 1.0], [0, 1]) == 0.0
    means, rates, counts = reliability_bins([0.65, 0.65, 0.95, 0.40], [1, 0, 1, 0])
    assert means.tolist() == pytest.approx([0.40, 0.65, 0.95])
    assert rates.tolist() == [0.0, 0.5, 1.0] and counts.tolist() == [1, 2, 1]


def test_ece_of_a_multi_label_task_is_per_label_and_their_mean():
    probabilities = np.array([[0.9, 0.2], [0.9, 0.7], [0.1, 0.7]])
    targets = np.array([[1, 0], [0, 1], [0, 1]])
    figures = expected_calibration_error(probabilities, targets, MULTI)
    # a: bin of 0.9 holds two texts, one with the label (|0.5 - 0.9|), 0.1 none (|0 - 0.1|)
    # b: 0.2 without (|0 - 0.2|), bin of 0.7 two texts, both with it (|1 - 0.7|)
    assert figures["ece_per_label"] == pytest.approx({"a": (2 * 0.4 + 0.1) / 3,
                                                      "b": (0.2 + 2 * 0.3) / 3})
    assert figures["ece"] == pytest.approx(np.mean([0.9 / 3, 0.8 / 3]))


def test_nll_and_brier_of_hand_computed_examples():
    logits = np.array([[np.log(3.0), 0.0, -50.0]])
    assert negative_log_likelihood(logits, [0], TASK) == pytest.approx(-np.log(0.75))
    assert negative_log_likelihood(logits, [0], TASK, [2.0]) == pytest.approx(
        -np.log(np.sqrt(3) / (np.sqrt(3) + 1)), abs=1e-9)
    assert brier_score(np.array([[0.75, 0.25, 0.0]]), [0], TASK) == pytest.approx(0.125)
    assert brier_score(np.array([[0.75, 0.25]]), np.array([[1, 1]]), MULTI) == pytest.approx(
        (0.0625 + 0.5625) / 2)
    assert negative_log_likelihood(np.array([[0.0, 0.0]]), np.array([[1, 0]]),
                                   MULTI) == pytest.approx(np.log(2))


@pytest.mark.parametrize("seed", range(10))
def test_the_fit_recovers_a_known_temperature(seed):
    for temperature in (0.5, 1.0, 2.5):
        logits, labels = _sampled(seed, temperature)
        # 4,000 texts: the fitted T is within 8% of the true one for seeds 0-9 (largest error
        # seen: 4%)
        assert fit_temperature(logits, labels) == pytest.approx(temperature, rel=0.08)


def test_multi_label_fits_one_temperature_per_label():
    rng = np.random.default_rng(0)
    true_logits = 2.0 * rng.normal(size=(5000, 2))
    targets = (rng.random((5000, 2)) < 1 / (1 + np.exp(-true_logits))).astype(int)
    fitted = fit_temperatures(true_logits * np.array([3.0, 0.5]), targets, MULTI)
    assert fitted == pytest.approx((3.0, 0.5), rel=0.1)
    assert fit_binary_temperature([5.0, -5.0, 1.0], [0, 0, 0]) == 1.0  # one outcome only


def test_temperature_scaling_never_changes_the_label_of_a_single_label_model():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(500, 6)) * 4
    for temperature in (0.05, 0.3, 1.0, 1.7, 20.0):
        calibrated = probabilities_of(logits, Task(tuple("abcdef")), [temperature])
        np.testing.assert_array_equal(calibrated.argmax(axis=1), logits.argmax(axis=1))


def test_fitting_on_over_confident_logits_brings_the_ece_under_one_percent():
    logits, labels = _sampled(seed=11, temperature=2.0, texts=20000)
    task = Task(tuple("abcdef"))
    fitted = fit_calibration(logits[:10000], labels[:10000], task)  # "validation"
    before = calibration_metrics(logits[10000:], labels[10000:], task)  # "test"
    after = calibration_metrics(logits[10000:], labels[10000:], task, fitted["temperatures"])
    assert before["ece"] > 0.05 and after["ece"] < 0.01
    assert after["nll"] < before["nll"] and after["brier"] < before["brier"]
    assert before["confidence"] > after["confidence"]
    assert fitted["seconds"] < 1.0  # milliseconds in fact; 1 s leaves room for a busy machine


def test_bad_inputs_are_refused_by_name():
    with pytest.raises(ValueError, match="one for all labels or one per label"):
        temperature_scaled(np.zeros((2, 3)), [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        temperature_scaled(np.zeros((2, 3)), [0.0])
    with pytest.raises(ValueError, match="finite logits"):
        fit_temperature(np.array([[np.nan, 0.0]]), [0])
    with pytest.raises(ValueError, match="one target per text"):
        fit_temperature(np.zeros((3, 2)), [0, 1])
    with pytest.raises(ValueError, match="non-empty"):
        binned_calibration_error([], [])
