"""Pooling read off a checkpoint's sentence-transformers configuration, and applied."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import write_sentence_transformers_config

from tfemotion.models.pooling import Pooling, checkpoint_pooling, pool


@pytest.mark.parametrize("mode,normalize", [("mean", True), ("cls", False), ("max", True)])
def test_pooling_follows_the_sentence_transformers_configuration(tmp_path, mode, normalize):
    write_sentence_transformers_config(tmp_path, mode, normalize)
    pooling = checkpoint_pooling(tmp_path)
    assert (pooling.mode, pooling.normalize) == (mode, normalize)
    assert "modules.json" in pooling.source


def test_a_checkpoint_without_it_gets_the_cls_state_normalized(tiny_bert_dir):
    pooling = checkpoint_pooling(tiny_bert_dir)
    assert (pooling.mode, pooling.normalize) == ("cls", True)
    assert "no sentence-transformers modules.json" in pooling.source


def test_an_unsupported_pooling_is_refused_naming_the_file(tmp_path):
    write_sentence_transformers_config(tmp_path)
    config = tmp_path / "1_Pooling" / "config.json"
    config.write_text(json.dumps({"pooling_mode_mean_sqrt_len_tokens": True}))
    with pytest.raises(ValueError, match="1_Pooling/config.json asks for a pooling"):
        checkpoint_pooling(tmp_path)


@pytest.mark.parametrize("mode", ["mean", "max", "cls"])
def test_padding_never_changes_a_texts_vector(mode):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(1, 5, 4)).astype(np.float32)
    short = pool(tf.constant(hidden[:, :3]), tf.constant([[1, 1, 1]]), Pooling(mode))
    padded = pool(tf.constant(hidden), tf.constant([[1, 1, 1, 0, 0]]), Pooling(mode))
    np.testing.assert_allclose(short.numpy(), padded.numpy(), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(padded.numpy(), axis=1), 1.0, atol=1e-6)
