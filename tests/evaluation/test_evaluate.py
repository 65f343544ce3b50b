"""Evaluating a split and a saved run: metrics, files, checks."""

from __future__ import annotations

import csv
import json

import pytest
from support import copy_run, load_data

from tfemotion.config import EMOTION_LABELS
from tfemotion.data import task_of, tokenize
from tfemotion.evaluation import classification_metrics, evaluate_run
from tfemotion.evaluation.outputs import predict_logits


@pytest.fixture()
def run(trained_run, tmp_path):
    """A copy of the session's trained run, which evaluate_run may write into."""
    return copy_run(trained_run[0], tmp_path / "run")


def test_evaluate_run_writes_split_files_and_consistent_metrics(run, emotion_splits):
    from tfemotion.prediction import load_classifier

    result = evaluate_run(run, "test")
    out = run / "evaluation" / "test"
    for name in ("metrics.json", "confusion_matrix.png", "classification_report.csv",
                 "classification_report.md", "errors_highest_loss.csv", "errors_highest_loss.md",
                 "errors_lowest_loss.csv", "errors_lowest_loss.md"):
        assert (out / name).is_file(), name
    model, tokenizer = load_classifier(run)
    encoded = tokenize(emotion_splits["test"], tokenizer, 64)
    predicted = predict_logits(model, encoded, tokenizer).argmax(axis=1)
    expected = classification_metrics(encoded["label"], predicted)
    assert {k: result[k] for k in expected} == pytest.approx(expected)
    assert result["split"] == "test" and result["examples"] == 60
    assert sum(row["support"] for row in result["per_class"].values()) == 60
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["f1_weighted"] == pytest.approx(result["f1_weighted"])
    assert len(list(csv.DictReader((out / "errors_lowest_loss.csv").open()))) == 5
    assert "precision" in result["report"]


def test_evaluate_run_evaluates_the_splits_it_is_given(run, emotion_splits):
    from datasets import DatasetDict

    given = DatasetDict({"validation": emotion_splits["validation"].select(range(7))})
    result = evaluate_run(run, "validation", dataset_dict=given, task=task_of(emotion_splits))
    assert result["examples"] == 7  # not the 60 texts of the run's data on disk
    assert sum(row["support"] for row in result["per_class"].values()) == 7


def test_evaluate_run_rejects_missing_run_split_and_label_mismatch(run, emotion_dir,
                                                                   emotion_splits, tmp_path):
    from datasets import DatasetDict

    with pytest.raises(FileNotFoundError, match="not a finished run"):
        evaluate_run(tmp_path / "elsewhere", "test")
    with pytest.raises(ValueError, match="no 'test' split"):
        evaluate_run(run, "test", dataset_dict=DatasetDict({"train": emotion_splits["train"]}))
    with pytest.raises(ValueError, match="split must be one of"):
        evaluate_run(run, "dev")
    relabelled = load_data(emotion_dir, labels=tuple(sorted(EMOTION_LABELS)))
    with pytest.raises(ValueError, match="is single_label with labels"):
        evaluate_run(run, "test", dataset_dict=relabelled)
    as_multi_label = load_data(emotion_dir, problem_type="multi_label")
    with pytest.raises(ValueError, match="is multi_label with labels"):
        evaluate_run(run, "test", dataset_dict=as_multi_label)


def test_multi_label_evaluation_files_and_evaluate_run_agree(multi_label_run, tmp_path):
    source, metrics = multi_label_run
    run = copy_run(source, tmp_path / "run")
    for name in ("label_confusion.png", "classification_report.csv", "errors_highest_loss.csv"):
        assert (run / name).stat().st_size > 0
    header = (run / "errors_highest_loss.csv").read_text().splitlines()[0]
    assert header == "text,labels,predicted_labels,loss"
    again = evaluate_run(run, "test")
    for key in ("f1_micro", "f1_macro", "hamming_loss"):
        assert again[key] == pytest.approx(metrics["test"][key], abs=1e-6)
    assert set(again["per_class"]["joy"]) >= {"precision", "recall", "f1", "support", "tp", "fp"}
    assert again["thresholds"] == metrics["thresholds"]
