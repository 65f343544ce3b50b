"""predict, predict_stream and load_predictor: one answer per text from a run, a model folder
or an export, the task and thresholds taken from the record."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tfemotion.config import EMOTION_LABELS
from tfemotion.prediction import load_predictor, predict, predict_stream

TEXTS = ["i feel so happy today", "sad and gloomy morning", "scared", "", "é 😀 … 中文"]


def test_an_export_answers_as_the_run_it_was_exported_from(trained_run, verified_export):
    from_run = predict(trained_run[0], TEXTS)
    from_export = predict(verified_export["path"], TEXTS)
    from_model_folder = predict(verified_export["path"].rsplit("/", 1)[0], TEXTS)  # BASE/NAME
    for keras, export, folder in zip(from_run, from_export, from_model_folder):
        assert export["label"] == keras["label"] == folder["label"]
        assert list(export["scores"]) == list(EMOTION_LABELS)
        assert export["scores"] == pytest.approx(keras["scores"], abs=1e-5)


def test_a_multi_label_run_decides_with_its_tuned_thresholds(multi_label_run):
    from tfemotion.prediction.keras_model import load_classifier, predict_proba
    from tfemotion.runfolder import RunFolder, RunRecord

    run = multi_label_run[0]
    record = RunRecord.load(RunFolder(run))
    thresholds = np.asarray(record.thresholds)
    model, tokenizer = load_classifier(run)
    # the thresholds were tuned on the calibrated probabilities: they decide on those
    probabilities = predict_proba(model, tokenizer, TEXTS, temperatures=record.temperatures)
    for result, row in zip(predict(run, TEXTS), probabilities):
        assert "label" not in result
        assert result["labels"] == [n for n, p, t in zip(EMOTION_LABELS, row, thresholds)
                                    if p >= t]


def test_predict_stream_answers_every_text_in_order_batch_by_batch(verified_export):
    classify = load_predictor(verified_export["path"])
    calls = []

    def counting(texts):
        calls.append(len(texts))
        return classify(texts)

    texts = itertools.islice(itertools.cycle(TEXTS), 23)
    results = list(predict_stream(counting, texts, batch_size=10))
    assert [r["text"] for r in results] == [TEXTS[i % len(TEXTS)] for i in range(23)]
    assert calls == [10, 10, 3]


def test_predict_refuses_no_texts_and_texts_that_are_not_strings(verified_export):
    with pytest.raises(ValueError, match="at least one text"):
        predict(verified_export["path"], [])
    with pytest.raises(TypeError, match="strings"):
        predict(verified_export["path"], ["ok", 3])
