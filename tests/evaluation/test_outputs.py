"""Logits, probabilities and per-example losses of a tokenized split."""

from __future__ import annotations

import numpy as np
import pytest

from tfemotion.data import task_of, tokenize, with_targets
from tfemotion.evaluation.outputs import (loss_and_predictions, per_example_bce,
                                          per_example_loss, predict_logits, sigmoid, softmax)


@pytest.fixture(scope="module")
def classifier(trained_run):
    from tfemotion.prediction import load_classifier

    return load_classifier(trained_run[0])


def test_per_example_loss_matches_keras_sparse_categorical_crossentropy():
    import tf_keras

    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(7, 4)) * 30, rng.integers(0, 4, 7)
    expected = tf_keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="none")(labels, logits.astype(np.float32)).numpy()
    assert per_example_loss(logits, labels) == pytest.approx(expected, rel=1e-4, abs=1e-4)
    with pytest.raises(ValueError, match="one label per example"):
        per_example_loss(logits, labels[:3])


def test_predict_logits_keeps_order_and_matches_unpadded_forward_passes(classifier,
                                                                       emotion_splits):
    model, tokenizer = classifier
    encoded = tokenize(emotion_splits["validation"], tokenizer, 64)
    logits = predict_logits(model, encoded, tokenizer, batch_size=8)
    assert logits.shape == (len(encoded), 6)
    for i in (0, 7, len(encoded) - 1):
        ids = np.asarray([encoded[i]["input_ids"]])
        single = model({"input_ids": ids, "attention_mask": np.ones_like(ids)}).logits.numpy()
        assert logits[i] == pytest.approx(single[0], abs=1e-4)
    assert logits.std(axis=0).max() > 0.1  # rows really differ, so order matters


def test_loss_and_predictions_needs_labels_and_tokens(classifier, emotion_splits):
    model, tokenizer = classifier
    task = task_of(emotion_splits)
    split = emotion_splits["test"]
    with pytest.raises(ValueError, match="tokenized"):
        loss_and_predictions(model, split, tokenizer, task)
    encoded = tokenize(split, tokenizer, 64)
    with pytest.raises(ValueError, match="label"):
        loss_and_predictions(model, encoded.remove_columns("label"), tokenizer, task)
    out = loss_and_predictions(model, encoded, tokenizer, task)
    assert (out["predicted"] == out["logits"].argmax(axis=1)).all()
    assert out["loss"] == pytest.approx(per_example_loss(out["logits"], encoded["label"]))
    assert out["probabilities"] == pytest.approx(softmax(out["logits"]))


def test_loss_and_predictions_of_a_multi_label_task_are_sigmoids_against_thresholds(
        multi_label_run, multi_label_dir):
    from support import load_data

    from tfemotion.prediction import load_classifier

    model, tokenizer = load_classifier(multi_label_run[0])
    splits = load_data(multi_label_dir)
    task = task_of(splits)
    encoded = with_targets(tokenize(splits["test"], tokenizer, 64), task)
    cut = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8][:task.num_labels]
    out = loss_and_predictions(model, encoded, tokenizer, task, thresholds=cut)
    assert out["probabilities"] == pytest.approx(sigmoid(out["logits"]))
    assert (out["predicted"] == (out["probabilities"] >= np.asarray(cut))).all()
    assert out["loss"] == pytest.approx(per_example_bce(out["logits"], encoded["label"]))


def test_per_example_bce_is_what_keras_averages():
    import tf_keras

    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=(5, 4)) * 3, rng.integers(0, 2, size=(5, 4)).astype(float)
    keras = tf_keras.losses.BinaryCrossentropy(from_logits=True, reduction="none")(
        targets, logits).numpy()
    np.testing.assert_allclose(per_example_bce(logits, targets), keras, rtol=1e-5)
