"""Metrics, per-class report, per-example losses, error tables and re-evaluating a run folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_dataset, write_run_record

from tfemotion.config import EMOTION_LABELS, DataConfig, FinetuneConfig
from tfemotion.data import load_splits, tokenize
from tfemotion.evaluate import (classification_metrics, error_tables, evaluate_run, format_report,
                                loss_and_predictions, markdown_table, per_class_report,
                                per_example_loss, predict_logits, write_table)


def make_saved_classifier(folder: Path, checkpoint: Path, scale: float = 20.0) -> Path:
    """An untrained tiny classifier saved like RUN/model, its kernels scaled up so that its
    outputs differ from text to text (at initialisation they are almost all the same)."""
    from transformers import TFAutoModelForSequenceClassification

    from tfemotion.checkpoints import load_tf_model, load_tokenizer

    names = list(EMOTION_LABELS)
    model = load_tf_model(TFAutoModelForSequenceClassification, str(checkpoint), num_labels=6,
                          id2label=dict(enumerate(names)),
                          label2id={n: i for i, n in enumerate(names)})
    for weight in model.weights:
        if "kernel" in weight.name:
            weight.assign(weight.numpy() * scale)
    model.save_pretrained(str(folder))
    load_tokenizer(str(checkpoint)).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("evaluate-data"), "txt", sizes=(40, 30, 30))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, tiny_bert_dir, data_dir) -> Path:
    """A run folder as `train` leaves it, as far as `evaluate_run` reads it."""
    run = tmp_path_factory.mktemp("evaluate-run")
    make_saved_classifier(run / "model", tiny_bert_dir)
    write_run_record(run, data_dir, FinetuneConfig(model=str(tiny_bert_dir), error_examples=4),
                     EMOTION_LABELS, 64)
    return run


@pytest.fixture(scope="module")
def classifier(run_dir):
    from tfemotion.prediction import load_classifier

    return load_classifier(run_dir / "model")


# region Metrics and tables


def test_classification_metrics_match_scikit_learn():
    from sklearn.metrics import f1_score

    y_true, y_pred = [0, 1, 2, 2, 1, 0, 2], [0, 2, 2, 2, 1, 1, 0]
    metrics = classification_metrics(y_true, y_pred)
    assert metrics["accuracy"] == pytest.approx(4 / 7)
    assert metrics["f1_macro"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    with pytest.raises(ValueError, match="equal length"):
        classification_metrics([0, 1], [0])


def test_per_class_report_matches_scikit_learn_report():
    from sklearn.metrics import classification_report

    y_true, y_pred = [0, 1, 2, 2, 1, 0, 2, 2], [0, 2, 2, 2, 1, 1, 0, 2]
    report = per_class_report(y_true, y_pred, ["a", "b", "c"])
    expected = classification_report(y_true, y_pred, target_names=["a", "b", "c"],
                                     output_dict=True)
    assert list(report) == ["a", "b", "c"]
    for name in report:
        assert report[name]["precision"] == pytest.approx(expected[name]["precision"])
        assert report[name]["f1"] == pytest.approx(expected[name]["f1-score"])
        assert report[name]["support"] == expected[name]["support"]
    assert format_report(report).splitlines()[3].startswith("c ")


def test_per_class_report_lists_classes_never_seen():
    report = per_class_report([0, 0], [0, 0], ["a", "b"])
    assert report["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_per_example_loss_matches_keras_sparse_categorical_crossentropy():
    import tf_keras

    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(7, 4)) * 30, rng.integers(0, 4, 7)
    expected = tf_keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="none")(labels, logits.astype(np.float32)).numpy()
    assert per_example_loss(logits, labels) == pytest.approx(expected, rel=1e-4, abs=1e-4)
    with pytest.raises(ValueError, match="one label per example"):
        per_example_loss(logits, labels[:3])


def test_error_tables_sort_by_loss_with_label_names():
    from datasets import Dataset

    dataset = Dataset.from_dict({"text": ["t0", "t1", "t2", "t3"], "label": [0, 1, 1, 0]})
    losses = np.array([0.5, 3.0, 0.1, 1.0])
    highest, lowest = error_tables(dataset, losses, np.array([0, 0, 1, 1]), ["neg", "pos"], n=2)
    assert highest["text"].tolist() == ["t1", "t3"]
    assert highest[["label", "predicted_label"]].values.tolist() == [["pos", "neg"], ["neg", "pos"]]
    assert lowest["text"].tolist() == ["t2", "t0"]
    with pytest.raises(ValueError, match="positive"):
        error_tables(dataset, losses, np.zeros(4, int), ["neg", "pos"], n=0)


def test_write_table_writes_csv_and_escaped_markdown(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"text": ["a | b", "line\nbreak"], "loss": [1.23456, 0.5]})
    files = write_table(frame, tmp_path / "errors.csv")
    rows = list(csv.DictReader(files["csv"].open()))
    assert rows[0]["text"] == "a | b" and float(rows[0]["loss"]) == pytest.approx(1.23456)
    lines = files["md"].read_text().splitlines()
    assert lines == ["| text | loss |", "| --- | ---: |", "| a \\| b | 1.2346 |",
                     "| line break | 0.5000 |"]
    assert markdown_table(frame) == files["md"].read_text()


# endregion
# region Predictions in batches


def test_predict_logits_keeps_order_and_matches_unpadded_forward_passes(classifier, data_dir):
    model, tokenizer = classifier
    encoded = tokenize(load_splits(DataConfig(source=str(data_dir)))["validation"], tokenizer, 64)
    logits = predict_logits(model, encoded, tokenizer, batch_size=8)
    assert logits.shape == (len(encoded), 6)
    for i in (0, 7, len(encoded) - 1):
        ids = np.asarray([encoded[i]["input_ids"]])
        single = model({"input_ids": ids, "attention_mask": np.ones_like(ids)}).logits.numpy()
        assert logits[i] == pytest.approx(single[0], abs=1e-4)
    assert logits.std(axis=0).max() > 0.1  # rows really differ, so order matters


def test_loss_and_predictions_needs_labels_and_tokens(classifier, data_dir):
    model, tokenizer = classifier
    split = load_splits(DataConfig(source=str(data_dir)))["test"]
    with pytest.raises(ValueError, match="tokenized"):
        loss_and_predictions(model, split, tokenizer)
    encoded = tokenize(split, tokenizer, 64)
    with pytest.raises(ValueError, match="label"):
        loss_and_predictions(model, encoded.remove_columns("label"), tokenizer)
    out = loss_and_predictions(model, encoded, tokenizer)
    assert (out["predicted_label"] == out["logits"].argmax(axis=1)).all()
    assert out["loss"] == pytest.approx(per_example_loss(out["logits"], encoded["label"]))


# endregion
# region evaluate_run


def test_evaluate_run_writes_split_files_and_consistent_metrics(run_dir, classifier, data_dir):
    result = evaluate_run(run_dir, "test")
    out = run_dir / "evaluation" / "test"
    for name in ("metrics.json", "confusion_matrix.png", "classification_report.csv",
                 "classification_report.md", "errors_highest_loss.csv", "errors_highest_loss.md",
                 "errors_lowest_loss.csv", "errors_lowest_loss.md"):
        assert (out / name).is_file(), name
    model, tokenizer = classifier
    encoded = tokenize(load_splits(DataConfig(source=str(data_dir)))["test"], tokenizer, 64)
    predicted = predict_logits(model, encoded, tokenizer).argmax(axis=1)
    expected = classification_metrics(encoded["label"], predicted)
    assert {k: result[k] for k in expected} == pytest.approx(expected)
    assert result["split"] == "test" and result["examples"] == 30
    assert sum(row["support"] for row in result["per_class"].values()) == 30
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["f1_weighted"] == pytest.approx(result["f1_weighted"])
    assert len(list(csv.DictReader((out / "errors_lowest_loss.csv").open()))) == 4
    assert "precision" in result["report"]


def test_evaluate_run_uses_given_splits(run_dir, data_dir):
    splits = load_splits(DataConfig(source=str(data_dir)))
    result = evaluate_run(run_dir, "validation", dataset_dict=splits)
    assert result["examples"] == len(splits["validation"])


def test_evaluate_run_rejects_missing_run_split_and_label_mismatch(run_dir, data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished run"):
        evaluate_run(tmp_path, "test")
    from datasets import DatasetDict

    splits = load_splits(DataConfig(source=str(data_dir)))
    with pytest.raises(ValueError, match="no 'test' split"):
        evaluate_run(run_dir, "test", dataset_dict=DatasetDict({"train": splits["train"]}))
    with pytest.raises(ValueError, match="split must be one of"):
        evaluate_run(run_dir, "dev")
    relabelled = load_splits(DataConfig(source=str(data_dir), labels=tuple(sorted(EMOTION_LABELS))))
    with pytest.raises(ValueError, match="labels differ"):
        evaluate_run(run_dir, "test", dataset_dict=relabelled)


# endregion
