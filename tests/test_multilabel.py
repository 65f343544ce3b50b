"""Multi-label classification from data to serving: thresholds, metrics, training, export."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from conftest import synthetic_rows
from tfemotion.config import EMOTION_LABELS, DataConfig, ExportConfig, FeatureConfig, FinetuneConfig
from tfemotion.multilabel import (THRESHOLD_GRID, multilabel_metrics, per_example_bce,
                                  tune_thresholds)


def two_label_rows(n: int, seed: int) -> list[tuple[str, list[str]]]:
    """Texts that join two synthetic texts of different labels and carry both labels."""
    rng = random.Random(seed)
    rows = []
    while len(rows) < n:
        (first, a), (second, b) = synthetic_rows(2, rng.randint(0, 10**6))
        if a != b:
            rows.append((f"{first} and {second}", sorted({a, b})))
    return rows


@pytest.fixture(scope="module")
def multi_label_data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multi-label-data")
    for split, n, seed in (("train", 240, 1), ("validation", 60, 2), ("test", 60, 3)):
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps({"text": t, "labels": ls}) + "\n" for t, ls in
                    two_label_rows(n, seed)), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def trained(multi_label_data, tiny_bert_dir, tmp_path_factory):
    from tfemotion.data import load_splits
    from tfemotion.finetune import train

    data = DataConfig(source=str(multi_label_data))
    run = tmp_path_factory.mktemp("multi-label-run")
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=8, batch_size=16,
                            learning_rate=1e-2, seed=0)
    metrics = train(load_splits(data), data, config, run, verbose=0)
    return run, metrics


def test_per_example_bce_is_what_keras_averages():
    import tf_keras

    rng = np.random.default_rng(0)
    logits, targets = rng.normal(size=(5, 4)) * 3, rng.integers(0, 2, size=(5, 4)).astype(float)
    keras = tf_keras.losses.BinaryCrossentropy(from_logits=True, reduction="none")(
        targets, logits).numpy()
    np.testing.assert_allclose(per_example_bce(logits, targets), keras, rtol=1e-5)


def test_tuned_thresholds_maximise_each_labels_f1_and_fall_back_to_the_global_one():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, size=(200, 3))
    targets[:, 2] = 0  # a label the validation split never shows
    probabilities = np.clip(0.3 * targets + rng.uniform(0, 0.6, size=targets.shape), 0, 1)
    thresholds, global_threshold = tune_thresholds(probabilities, targets)
    for label in range(2):
        def f1(t):
            return f1_score(targets[:, label], probabilities[:, label] >= t)
        assert thresholds[label] in THRESHOLD_GRID
        assert f1(thresholds[label]) == max(f1(t) for t in THRESHOLD_GRID)
    assert thresholds[2] == global_threshold
    micro = [multilabel_metrics(targets, probabilities >= t)["f1_micro"] for t in THRESHOLD_GRID]
    assert multilabel_metrics(targets, probabilities >= global_threshold)["f1_micro"] == max(micro)


def test_multi_label_training_records_tuned_thresholds_and_the_right_metrics(trained):
    from tfemotion.runfolder import RunFolder, RunRecord

    run, metrics = trained
    record = RunRecord.load(RunFolder(run))
    assert record.problem_type == "multi_label" and len(record.thresholds) == 6
    assert set(record.thresholds) <= set(THRESHOLD_GRID)
    assert metrics["thresholds"] == dict(zip(EMOTION_LABELS, record.thresholds))
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["problem_type"] == "multi_label_classification"
    micro = [row["val_f1_micro"] for row in metrics["epochs"]]
    assert metrics["best_epoch"] == 1 + micro.index(max(micro))
    for split in ("validation", "test"):
        figures = metrics[split]
        assert set(figures) == {"f1_micro", "f1_macro", "f1_weighted", "subset_accuracy",
                                "hamming_loss", "at_threshold_0.5"}
        # 0.5 is on the grid, so tuned per-label F1 (hence macro F1) cannot be worse there
        if split == "validation":
            assert figures["f1_macro"] >= figures["at_threshold_0.5"]["f1_macro"]


def test_multi_label_model_learns_above_predicting_every_label(trained, multi_label_data):
    run, metrics = trained
    # Every text carries 2 of 6 labels: predicting all six gives micro F1 2*(1/3)/(1/3+1) = 0.5
    assert metrics["test"]["f1_micro"] > 0.55 or metrics["test"]["at_threshold_0.5"][
        "f1_micro"] > 0.55


def test_multi_label_evaluation_files_and_evaluate_run_agree(trained):
    from tfemotion.evaluate import evaluate_run

    run, metrics = trained
    for name in ("label_confusion.png", "classification_report.csv", "errors_highest_loss.csv"):
        assert (run / name).stat().st_size > 0
    header = (run / "errors_highest_loss.csv").read_text().splitlines()[0]
    assert header == "text,labels,predicted_labels,loss"
    again = evaluate_run(run, "test")
    for key in ("f1_micro", "f1_macro", "hamming_loss"):
        assert again[key] == pytest.approx(metrics["test"][key], abs=1e-6)
    assert set(again["per_class"]["joy"]) >= {"precision", "recall", "f1", "support", "tp", "fp"}


def test_multi_label_export_serves_the_tuned_decisions(trained, tmp_path):
    import tensorflow as tf

    from tfemotion.export import export_run
    from tfemotion.prediction import predict
    from tfemotion.runfolder import RunFolder, RunRecord
    from tfemotion.serving import format_prediction

    run, _ = trained
    report = export_run(run, ExportConfig(base_path=str(tmp_path)))
    assert report["verification"]["passed"] and report["problem_type"] == "multi_label"
    thresholds = RunRecord.load(RunFolder(run)).thresholds
    assert report["thresholds"] == list(thresholds)
    texts = ["i feel so happy and glad and scared", "angry and mad", "nothing at all"]
    out = tf.saved_model.load(report["path"]).signatures["serving_default"](
        text=tf.constant(texts))
    probabilities, predicted = out["probabilities"].numpy(), out["predicted"].numpy()
    np.testing.assert_array_equal(predicted, probabilities >= np.float32(thresholds))
    for names, flags in zip(out["labels"].numpy(), predicted):
        wanted = [n for n, on in zip(EMOTION_LABELS, flags) if on]
        assert [b.decode() for b in names] == wanted + [""] * (6 - len(wanted))
    from_export = predict(report["path"], texts)
    from_run = predict(run, texts)
    assert [r["labels"] for r in from_export] == [r["labels"] for r in from_run]
    line = format_prediction(from_export[0])
    assert all(f"{name} " in line for name in from_export[0]["labels"]) or "(no label)" in line


def test_multi_label_baseline_is_one_vs_rest(multi_label_data, tiny_bert_dir, tmp_path):
    from tfemotion.data import load_splits
    from tfemotion.features import run_baseline

    splits = load_splits(DataConfig(source=str(multi_label_data)))
    metrics = run_baseline(splits, FeatureConfig(model=str(tiny_bert_dir), umap=False), tmp_path)
    for name in ("logistic_regression", "dummy"):
        assert set(metrics[name]["validation"]) == {"f1_micro", "f1_macro", "f1_weighted",
                                                   "subset_accuracy", "hamming_loss"}
    assert (tmp_path / "label_confusion.png").stat().st_size > 2000


def test_thresholds_are_refused_for_a_single_label_model(tiny_bert_dir, tmp_path):
    from tfemotion.export import export_model

    with pytest.raises(ValueError, match="thresholds are for multi-label models"):
        export_model(tiny_bert_dir, ExportConfig(base_path=str(tmp_path), verify=False),
                     thresholds=[0.5] * 2)


def test_multi_label_resume_continues_with_micro_f1_rows(multi_label_data, tiny_bert_dir,
                                                         tmp_path):
    import csv

    from test_finetune import StopAfterEpoch

    from tfemotion.data import load_splits
    from tfemotion.finetune import train

    data = DataConfig(source=str(multi_label_data))
    splits = load_splits(data)
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=2, batch_size=32,
                            learning_rate=1e-2)
    with pytest.raises(KeyboardInterrupt):
        train(splits, data, config, tmp_path, verbose=0, callbacks=[StopAfterEpoch(1)])
    metrics = train(splits, data, config.replace(resume=True), tmp_path, verbose=0)
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert all("val_f1_micro" in e for e in metrics["epochs"])
    with (tmp_path / "history.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [float(r["val_f1_micro"]) for r in rows] == [e["val_f1_micro"]
                                                          for e in metrics["epochs"]]


def test_multi_label_training_runs_in_mixed_bfloat16_where_the_hardware_has_it(
        multi_label_data, tiny_bert_dir, tmp_path):
    from tfemotion import hardware
    from tfemotion.data import load_splits
    from tfemotion.finetune import train

    if not hardware._bfloat16_hardware([]):
        pytest.skip("this CPU has no bfloat16 units")
    data = DataConfig(source=str(multi_label_data))
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=1, batch_size=32,
                            learning_rate=1e-2, mixed_precision="mixed_bfloat16")
    metrics = train(load_splits(data), data, config, tmp_path, verbose=0)
    assert np.isfinite(metrics["epochs"][0]["loss"]) and len(metrics["thresholds"]) == 6
    assert 0.0 <= metrics["test"]["f1_micro"] <= 1.0
