"""Checkpoint loading: local folders, the safetensors-only work-around, offline hub ids."""

from __future__ import annotations


import numpy as np
import pytest

from tfemotion.checkpoints import (
    HubUnreachableError,
    load_tf_model,
    load_tokenizer,
    model_max_length,
)


def test_load_tf_model_reads_safetensors_only_folder_with_pytorch_names(tiny_distilbert_safetensors_dir):
    from safetensors.numpy import load_file
    from transformers import TFAutoModel

    assert not (tiny_distilbert_safetensors_dir / "tf_model.h5").exists()
    model = load_tf_model(TFAutoModel, str(tiny_distilbert_safetensors_dir))
    tensors = load_file(str(tiny_distilbert_safetensors_dir / "model.safetensors"))
    np.testing.assert_array_equal(model.distilbert.embeddings.weight.numpy(),
                                  tensors["embeddings.word_embeddings.weight"])
    # A linear layer's kernel is the transpose of the PyTorch weight.
    np.testing.assert_array_equal(
        model.distilbert.transformer.layer[1].ffn.lin1.kernel.numpy(),
        tensors["transformer.layer.1.ffn.lin1.weight"].T)


def test_load_tf_model_classifier_keeps_encoder_weights(tiny_distilbert_safetensors_dir):
    from transformers import TFAutoModel, TFAutoModelForSequenceClassification

    encoder = load_tf_model(TFAutoModel, str(tiny_distilbert_safetensors_dir))
    classifier = load_tf_model(TFAutoModelForSequenceClassification,
                               str(tiny_distilbert_safetensors_dir), num_labels=4)
    assert classifier.config.num_labels == 4
    np.testing.assert_array_equal(encoder.distilbert.embeddings.weight.numpy(),
                                  classifier.distilbert.embeddings.weight.numpy())


def test_load_tf_model_rejects_checkpoint_without_encoder_weights(tiny_distilbert_safetensors_dir, tmp_path):
    import shutil

    from safetensors.numpy import save_file
    from transformers import TFAutoModel

    folder = tmp_path / "broken"
    shutil.copytree(tiny_distilbert_safetensors_dir, folder)
    save_file({"unrelated.weight": np.zeros((2, 2), np.float32)}, str(folder / "model.safetensors"))
    with pytest.raises(ValueError, match="does not hold the weights"):
        load_tf_model(TFAutoModel, str(folder))


def test_hub_checkpoint_offline_fails_fast_with_advice(monkeypatch):
    from transformers import TFAutoModel

    import transformers

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    # Failing fast: the hub's own retries (~25 s without network) are never entered.
    for name in ("TFAutoModel", "AutoTokenizer"):
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained",
                            lambda *a, **k: pytest.fail("went to the hub"))
    with pytest.raises(HubUnreachableError, match=r"--model PATH.*MODEL=PATH"):
        load_tf_model(TFAutoModel, "distilbert-base-uncased")
    with pytest.raises(HubUnreachableError):
        load_tokenizer("distilbert-base-uncased")


def test_model_max_length_takes_the_smaller_limit(tiny_bert_dir):
    from transformers import AutoConfig

    tokenizer = load_tokenizer(str(tiny_bert_dir))
    config = AutoConfig.from_pretrained(str(tiny_bert_dir))
    tokenizer.model_max_length = int(1e30)  # what some tokenizers report
    assert model_max_length(tokenizer, config) == 64
    assert model_max_length(tokenizer, config, requested=16) == 16
    with pytest.raises(ValueError, match="Received: max_length=65"):
        model_max_length(tokenizer, config, requested=65)
