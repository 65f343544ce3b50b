"""The sentence classifier: logits like transformers' classifiers, saved and loaded back by the
one loader every reader uses."""

from __future__ import annotations

import numpy as np
import pytest

from tfemotion.models import (SentenceClassifier, build_sentence_classifier, load_run_model,
                              load_sentence_classifier)
from tfemotion.task import MULTI_LABEL, Task

TASK = Task(("sadness", "joy", "love"))


@pytest.fixture(scope="module")
def classifier(tiny_sentence_encoder_dir):
    model = build_sentence_classifier(str(tiny_sentence_encoder_dir), TASK)
    rng = np.random.default_rng(0)
    model.set_head(rng.normal(size=(32, 3)), rng.normal(size=3), head="logistic_regression")
    return model


def _batch():
    import tensorflow as tf

    return (tf.constant([[2, 40, 41, 3, 0], [2, 42, 3, 0, 0]], tf.int32),
            tf.constant([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], tf.int32))


def test_it_answers_as_transformers_classifiers_do(classifier):
    ids, mask = _batch()
    output = classifier(input_ids=ids, attention_mask=mask, training=False)
    assert output.logits.shape == (2, 3)
    assert classifier.config.id2label == {0: "sadness", 1: "joy", 2: "love"}
    assert classifier.config.num_labels == 3 and classifier.pooling.mode == "mean"
    by_dict = classifier({"input_ids": ids, "attention_mask": mask}, training=False).logits
    np.testing.assert_allclose(by_dict.numpy(), output.logits.numpy(), atol=1e-6)


def test_its_logits_are_the_dense_head_on_the_pooled_vectors(classifier):
    ids, mask = _batch()
    vectors = classifier.embed(ids, mask).numpy()
    kernel, bias = classifier.head.get_weights()
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(classifier(input_ids=ids, attention_mask=mask).logits.numpy(),
                               vectors @ kernel + bias, atol=1e-5)


def test_it_saves_and_loads_back_through_the_one_loader(classifier, tmp_path):
    classifier.save_pretrained(tmp_path)
    loaded = load_run_model(tmp_path)
    assert isinstance(loaded, SentenceClassifier)
    assert loaded.pooling == classifier.pooling and loaded.head_kind == "logistic_regression"
    assert loaded.config.id2label == classifier.config.id2label
    ids, mask = _batch()
    np.testing.assert_allclose(loaded(input_ids=ids, attention_mask=mask).logits.numpy(),
                               classifier(input_ids=ids, attention_mask=mask).logits.numpy(),
                               atol=1e-5)


def test_a_multi_label_task_sets_transformers_problem_type(tiny_sentence_encoder_dir):
    model = build_sentence_classifier(str(tiny_sentence_encoder_dir),
                                      Task(("a", "b"), MULTI_LABEL))
    assert model.config.problem_type == "multi_label_classification"


def test_loading_a_folder_without_its_head_names_what_is_missing(classifier, tmp_path):
    classifier.save_pretrained(tmp_path)
    (tmp_path / "head.npz").unlink()
    with pytest.raises(FileNotFoundError, match="head.npz is missing"):
        load_sentence_classifier(tmp_path)
    with pytest.raises(ValueError, match="not a saved sentence classifier"):
        load_sentence_classifier(tmp_path / "nothing")
