"""A saved Keras classifier: scores, parity with the transformers pipeline, batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tfemotion.config import EMOTION_LABELS
from tfemotion.prediction import load_classifier, load_pipeline, predict, predict_proba

TEXTS = ["i feel so happy today", "sad and gloomy morning", "scared",
         "i love my friend and it was a really amazed day with the angry dog", "é 😀 … 中文"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    """An untrained classifier whose scaled kernels make its outputs differ from text to text."""
    from support import make_saved_classifier

    return make_saved_classifier(tmp_path_factory.mktemp("predict") / "model", tiny_bert_dir)


def test_predict_returns_label_and_scores_in_label_order(model_dir):
    results = predict(model_dir, TEXTS)
    assert [r["text"] for r in results] == TEXTS
    for result in results:
        assert list(result["scores"]) == list(EMOTION_LABELS)
        assert sum(result["scores"].values()) == pytest.approx(1.0)
        assert result["label"] == max(result["scores"], key=result["scores"].get)
    distinct = {tuple(round(p, 6) for p in r["scores"].values()) for r in results}
    assert len(distinct) == len(TEXTS)  # each text gets its own answer


def test_predict_matches_the_transformers_pipeline(model_dir):
    results = predict(model_dir, TEXTS)
    outputs = load_pipeline(model_dir)(TEXTS)
    for result, output in zip(results, outputs):
        pipeline_scores = {item["label"]: item["score"] for item in output}
        assert set(pipeline_scores) == set(EMOTION_LABELS)
        for label, score in pipeline_scores.items():
            assert result["scores"][label] == pytest.approx(score, abs=1e-5)


def test_predict_proba_is_independent_of_batching_and_padding(model_dir):
    model, tokenizer = load_classifier(model_dir)
    together = predict_proba(model, tokenizer, TEXTS, batch_size=len(TEXTS))
    alone = np.concatenate([predict_proba(model, tokenizer, [t]) for t in TEXTS])
    assert together == pytest.approx(alone, abs=1e-5)
    assert predict((model, tokenizer), TEXTS[:1])[0]["scores"] == pytest.approx(
        dict(zip(EMOTION_LABELS, alone[0])))


def test_predict_rejects_empty_and_non_string_input(model_dir):
    model, tokenizer = load_classifier(model_dir)
    with pytest.raises(ValueError, match="at least one text"):
        predict_proba(model, tokenizer, [])
    with pytest.raises(TypeError, match="strings"):
        predict_proba(model, tokenizer, ["ok", 3])


def test_load_classifier_explains_a_folder_without_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="RUN/model"):
        load_classifier(tmp_path)


def test_a_multi_label_model_folder_answers_sigmoids_and_labels_at_one_half(multi_label_run):
    model, tokenizer = load_classifier(multi_label_run[0])
    probabilities = predict_proba(model, tokenizer, TEXTS)
    assert not np.allclose(probabilities.sum(axis=1), 1.0)  # one sigmoid per label
    results = predict(f"{multi_label_run[0]}/model", TEXTS)  # a bare folder: no tuned thresholds
    for result, row in zip(results, probabilities):
        assert result["labels"] == [n for n, p in zip(EMOTION_LABELS, row) if p >= 0.5]


LONG = "i feel so happy today " * 20 + "but now i am scared and sad"  # ~130 tokens


def test_a_long_text_is_read_in_windows_whose_logits_are_averaged(model_dir):
    model, tokenizer = load_classifier(model_dir)
    windows = tokenizer([LONG], truncation=True, max_length=32, stride=4, padding=True,
                        return_overflowing_tokens=True, return_tensors="np")
    assert len(windows["input_ids"]) >= 4
    logits = model({"input_ids": windows["input_ids"],
                    "attention_mask": windows["attention_mask"]}, training=False).logits
    mean = np.asarray(logits, np.float64).mean(axis=0)
    want = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()
    got = predict_proba(model, tokenizer, [LONG, "sad"], max_length=32, stride=4, batch_size=3)
    np.testing.assert_allclose(got[0], want, atol=1e-6)
    short = predict_proba(model, tokenizer, ["sad"], max_length=32, long_texts="truncate")
    np.testing.assert_allclose(got[1], short[0], atol=1e-6)  # within the window: unchanged
    truncated = predict_proba(model, tokenizer, [LONG], max_length=32, long_texts="truncate")
    assert np.abs(truncated[0] - got[0]).max() > 1e-4  # the windows past the first count
    with pytest.raises(ValueError, match="long_texts must be"):
        predict_proba(model, tokenizer, [LONG], long_texts="chunks")
