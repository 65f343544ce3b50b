"""The head on the embeddings: a dense layer that answers as scikit-learn's fitted classifier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from tfemotion.task import MULTI_LABEL, Task
from tfemotion.training.heads import C_GRID, DEFAULT_C, fit_head, out_of_fold_probabilities


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def _data(labels: int, per_label: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(labels, 8))
    x = np.concatenate([c + rng.normal(scale=0.8, size=(per_label, 8)) for c in centers])
    return x / np.linalg.norm(x, axis=1, keepdims=True), np.repeat(np.arange(labels), per_label)


@pytest.mark.parametrize("labels", [2, 4])
def test_logistic_head_logits_give_sklearns_predict_proba(labels):
    x, y = _data(labels, 10)
    fit = fit_head(x, y, Task(tuple("abcd"[:labels])), c=3.0)
    reference = LogisticRegression(C=3.0, max_iter=1000).fit(x, y)
    assert fit.kernel.shape == (8, labels) and fit.bias.shape == (labels,)
    np.testing.assert_allclose(_softmax(fit.logits(x)), reference.predict_proba(x), atol=1e-5)


def test_multi_label_head_is_one_logistic_regression_per_label():
    x, y = _data(3, 10)
    targets = np.stack([y == 0, y != 1, y == 2], axis=1).astype(np.float32)
    task = Task(("a", "b", "c"), MULTI_LABEL)
    fit = fit_head(x, targets, task, c=1.0)
    for label in range(3):
        reference = LogisticRegression(C=1.0, max_iter=1000).fit(x, targets[:, label])
        np.testing.assert_allclose(1 / (1 + np.exp(-fit.logits(x)[:, label])),
                                   reference.predict_proba(x)[:, 1], atol=1e-5)


def test_a_label_without_training_texts_is_never_predicted():
    x, y = _data(3, 6)
    fit = fit_head(x, y, Task(("a", "b", "c", "d")), c=1.0)
    assert (fit.logits(x).argmax(axis=1) != 3).all()
    task = Task(("a", "b"), MULTI_LABEL)
    always = fit_head(x, np.stack([np.ones(len(y)), y == 0], axis=1), task, c=1.0)
    assert (always.logits(x)[:, 0] > 0).all()


def test_c_is_cross_validated_on_the_grid_or_setfits_default_with_too_few_texts():
    x, y = _data(3, 6)
    assert fit_head(x, y, Task(("a", "b", "c"))).c in C_GRID
    few = fit_head(x[:4], np.array([0, 0, 1, 2]), Task(("a", "b", "c")))
    assert few.c == DEFAULT_C and "too few" in few.note


def test_out_of_fold_probabilities_are_a_probability_per_label():
    x, y = _data(3, 6)
    task = Task(("a", "b", "c"))
    probabilities = out_of_fold_probabilities(x, y, task, fit_head(x, y, task, c=1.0))
    assert probabilities.shape == (18, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-9)


def test_dense_head_is_trained_on_the_embeddings():
    x, y = _data(2, 12)
    fit = fit_head(x, y, Task(("a", "b")), kind="dense")
    assert fit.kind == "dense" and fit.c is None
    assert (fit.logits(x).argmax(axis=1) == y).mean() >= 0.9  # well-separated clusters
