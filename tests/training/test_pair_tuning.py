"""Phase 1 of the contrastive recipe: the pair loss, one optimizer step, padding and the
checkpoint state a resumed run starts from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from tfemotion.runfolder import RunFolder
from tfemotion.training.pair_tuning import PairTuner, pad_batch, phase1_step


class _BagOfWords(tf_keras.layers.Layer):
    """A stand-in sentence classifier: the masked sum of 4-dimensional word vectors."""

    def __init__(self):
        super().__init__()
        # Built at once, as a loaded checkpoint is: the tuner builds its optimizer for the
        # variables that exist before its first step.
        self.vectors = self.add_weight(
            name="vectors", shape=(6, 4),
            initializer=tf_keras.initializers.RandomNormal(seed=0))
        # Like a BERT pooler under mean pooling: trainable, and no part of the pooled vector.
        self.pooler = self.add_weight(name="pooler", shape=(4, 4))

    def embed(self, input_ids, attention_mask, training=False):
        words = tf.gather(self.vectors, input_ids)
        return tf.reduce_sum(words * tf.cast(attention_mask, tf.float32)[..., None], axis=1)


def _batch():
    ids, mask = pad_batch([[1, 2], [1, 3], [4], [5, 4, 4]], pad_id=0)
    features = {"input_ids": tf.constant(ids), "attention_mask": tf.constant(mask),
                "left": tf.constant([0, 0, 2]), "right": tf.constant([1, 2, 3]),
                "weights": tf.constant([0.5, 0.25, 0.25])}
    return features, tf.constant([1.0, 0.0, 1.0])


def test_pad_batch_pads_to_the_longest_row_and_masks_the_padding():
    ids, mask = pad_batch([[7, 8, 9], [5]], pad_id=0)
    assert ids.tolist() == [[7, 8, 9], [5, 0, 0]] and mask.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert ids.dtype == np.int32 and mask.dtype == np.int32


def test_pair_loss_is_the_weighted_squared_error_of_the_pairs_cosines():
    tuner = PairTuner(_BagOfWords())
    features, targets = _batch()
    loss = float(tuner.pair_loss(features["input_ids"], features["attention_mask"],
                                 features["left"], features["right"], targets,
                                 features["weights"]))
    vectors = tuner.classifier.embed(features["input_ids"], features["attention_mask"]).numpy()
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = np.array([vectors[a] @ vectors[b] for a, b in ((0, 1), (0, 2), (2, 3))])
    expected = np.sum(np.array([0.5, 0.25, 0.25]) * (cosine - np.array([1.0, 0.0, 1.0])) ** 2)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_a_train_step_moves_the_encoder_and_lowers_the_pair_loss(caplog):
    tuner = PairTuner(_BagOfWords())
    tuner.compile(optimizer=tf_keras.optimizers.SGD(0.05))
    features, targets = _batch()
    pooler = tuner.classifier.pooler.numpy()
    with caplog.at_level("WARNING"):
        first = float(tuner.train_step((features, targets)))
        for _ in range(20):
            last = float(tuner.train_step((features, targets)))
    # The variable without a gradient is left alone, without a warning at each step.
    assert not [r for r in caplog.records if "Gradients do not exist" in r.getMessage()]
    assert (tuner.classifier.pooler.numpy() == pooler).all()
    # Plain gradient descent with a small step on a smooth loss: it falls.
    assert last < first
    assert int(tuner.optimizer.iterations.numpy()) == 21


def test_phase1_step_reads_the_last_complete_checkpoint_from_the_state(tmp_path):
    run = RunFolder(tmp_path / "run")
    assert phase1_step(run) == 0
    run.state.parent.mkdir(parents=True, exist_ok=True)
    run.state.write_text(json.dumps({"rows": [], "phase1_step": 12}), encoding="utf-8")
    assert phase1_step(run) == 12
    run.state.write_text(json.dumps({"rows": [], "completed_epochs": 1}), encoding="utf-8")
    assert phase1_step(run) == 0
