"""Slow checks on the real emotion data and the real MiniLM encoder (`pytest --runslow
--emotion-data DIR`): the data loads as the hub's, the in-graph tokenizer matches Hugging Face on
all 20,000 texts, and fine-tuning with the default settings learns."""

from __future__ import annotations

import json

import pytest

from tfemotion.config import EMOTION_LABELS, DataConfig, FinetuneConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def emotions(real_emotion_dir):
    from tfemotion.data import load_splits

    return load_splits(DataConfig(source=str(real_emotion_dir)))


def test_real_data_loads_as_the_hub_splits(emotions):
    assert {split: len(d) for split, d in emotions.items()} == {
        "train": 16000, "validation": 2000, "test": 2000}
    assert emotions["train"].features["label"].names == list(EMOTION_LABELS)


def test_in_graph_tokenizer_matches_hugging_face_on_every_real_text(emotions, minilm_dir):
    import tensorflow as tf

    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.tokenizers import from_hf_tokenizer

    tokenizer = load_tokenizer(str(minilm_dir))
    in_graph = from_hf_tokenizer(tokenizer, max_length=128)
    texts = [t for split in emotions.values() for t in split["text"]]
    mismatched = []
    for begin in range(0, len(texts), 256):
        batch = texts[begin:begin + 256]
        expected = tokenizer(batch, truncation=True, max_length=128)["input_ids"]
        got = in_graph(tf.constant(batch))
        ids, mask = got["input_ids"].numpy(), got["attention_mask"].numpy()
        mismatched += [text for text, want, row, m in zip(batch, expected, ids, mask)
                       if row[:m.sum()].tolist() != want]
    assert len(texts) == 20000 and mismatched == []


def test_default_fine_tuning_learns_the_real_data_in_one_epoch(emotions, real_emotion_dir,
                                                               minilm_dir, tmp_path):
    """One epoch with make run's settings (learning rate chosen for MiniLM): the full two reach
    >= 0.92 (benchmarks/bench_make_run.py); one epoch already passes 0.88."""
    from tfemotion.training import train

    metrics = train(emotions, DataConfig(source=str(real_emotion_dir)),
                    FinetuneConfig(model=str(minilm_dir), epochs=1), tmp_path / "run", verbose=0)
    assert metrics["schedule"]["learning_rate"] == 2e-4
    assert metrics["validation"]["f1_weighted"] >= 0.88
    assert metrics["test"]["f1_weighted"] >= 0.88
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["schedule"]["reason"].startswith("learning rate 0.0002 chosen for the encoder's")
