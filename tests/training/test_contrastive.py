"""The contrastive recipe: chosen for few texts, trained without a validation split, resumed
after a kill, and the same product afterwards (evaluation, export, prediction)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tf_keras
from support import synthetic_rows, write_multi_label_dataset, write_split

from tfemotion.config import DataConfig, FinetuneConfig
from tfemotion.data import load_splits
from tfemotion.runfolder import RunFolder, RunRecord
from tfemotion.training import train

# Every test here trains: not in `make check`.
pytestmark = pytest.mark.integration

TINY = {"texts_per_step": 8, "contrastive_steps": 6, "checkpoint_steps": 2, "batch_size": 16,
        "learning_rate": 1e-3}
STEPS = 6
STOP_AT = 3  # the run is killed after step 3; its last checkpoint is step 2's


class _Interrupt(tf_keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == STOP_AT:
            raise KeyboardInterrupt("the machine went away")


class _CountSteps(tf_keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1


@pytest.fixture(scope="module")
def few_run(tmp_path_factory, tiny_sentence_encoder_dir):
    """60 texts, 6 labels, no validation split: killed in phase 1, then resumed."""
    root = tmp_path_factory.mktemp("few")
    write_split(root / "data" / "train.txt", synthetic_rows(60, 0), "txt")
    write_split(root / "data" / "test.txt", synthetic_rows(24, 2), "txt")
    data = DataConfig(source=str(root / "data"))
    splits, run = load_splits(data), root / "run"
    config = FinetuneConfig(model=str(tiny_sentence_encoder_dir), **TINY)
    with pytest.raises(KeyboardInterrupt):
        train(splits, data, config, run, verbose=0, callbacks=[_Interrupt()])
    interrupted = json.loads(RunFolder(run).state.read_text())
    counter = _CountSteps()
    metrics = train(splits, data, config.replace(resume=True), run, verbose=0,
                    callbacks=[counter])
    return run, metrics, interrupted, counter.steps


def test_auto_recipe_trains_few_texts_without_validation_split_and_records_why(few_run):
    run, metrics, _, _ = few_run
    record = RunRecord.load(RunFolder(run))
    assert record.finetune.recipe == "auto" and record.recipe_ran == "contrastive"
    assert "(10.0 per label" in record.recipe_reason
    assert record.validation.startswith("none: the head's C is chosen by cross-validation")
    assert record.contrastive["pooling"]["mode"] == "mean"  # the checkpoint's modules.json
    assert record.contrastive["template_texts"] == 12  # 2 per label: the names are words
    assert record.contrastive["sampling"] == "in_batch"
    assert record.contrastive["pairs_per_epoch"] == STEPS * 28  # 8 texts a step: 28 pairs
    assert "test" in metrics and "validation" not in metrics
    assert metrics["recipe"]["name"] == "contrastive"
    assert metrics["recipe"]["validation"] == record.validation
    assert (run / "model" / "head.npz").is_file() and (run / "evaluation" / "test").is_dir()


def test_phase_one_resumes_after_a_kill_from_its_last_checkpoint(few_run):
    run, metrics, interrupted, steps_after_resume = few_run
    assert interrupted["phase1_step"] == 2  # step 3 was done, but not checkpointed
    assert steps_after_resume == STEPS - 2
    state = json.loads(RunFolder(run).state.read_text())
    assert state["phase1_step"] == STEPS and state["completed_epochs"] == 1
    assert sorted(p.name for p in (run / "checkpoints").glob("phase1-step-*.index")) == [
        f"phase1-step-{STEPS}.index"]  # older checkpoints are removed
    assert [row["epoch"] for row in metrics["epochs"]] == [1]


def test_the_run_is_evaluated_exported_and_predicted_as_fine_tuning_runs_are(few_run, tmp_path):
    import tensorflow as tf

    from tfemotion.config import ExportConfig
    from tfemotion.evaluation import evaluate_run
    from tfemotion.export import export_run
    from tfemotion.prediction.keras_model import load_classifier, predict_proba

    run, metrics, _, _ = few_run
    assert evaluate_run(run, "test")["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    with pytest.raises(ValueError, match="no 'validation' split"):
        evaluate_run(run, "validation")
    report = export_run(run, ExportConfig(base_path=str(tmp_path), verify=False,
                                          warmup_batch_sizes=(1,)))
    texts = ["i feel so happy today", "this was a gloomy and sad morning", "", "amazed!"]
    model, tokenizer = load_classifier(run)
    record = RunRecord.load(RunFolder(run))
    # no validation split, and the recipe holds no texts out: nothing to fit a temperature on
    assert record.temperatures is None and record.calibration.startswith("none: no validation")
    assert metrics["calibration"]["temperatures"] is None
    expected = predict_proba(model, tokenizer, texts, temperatures=record.temperatures)
    served = tf.saved_model.load(report["path"]).signatures["serving_default"]
    np.testing.assert_allclose(served(text=tf.constant(texts))["probabilities"].numpy(),
                               expected, atol=1e-5)


def test_multi_label_data_without_validation_gets_out_of_fold_thresholds(
        tmp_path, tiny_sentence_encoder_dir):
    folder = write_multi_label_dataset(tmp_path / "data", sizes=(40, 4, 12))
    (folder / "validation.jsonl").unlink()
    data = DataConfig(source=str(folder))
    config = FinetuneConfig(model=str(tiny_sentence_encoder_dir), recipe="contrastive",
                            pair_sampling="oversampling", max_pairs=8, pair_batch_size=4,
                            batch_size=16)
    metrics = train(load_splits(data), data, config, tmp_path / "run", verbose=0)
    record = RunRecord.load(RunFolder(tmp_path / "run"))
    assert record.contrastive["sampling"] == "oversampling"
    assert record.contrastive["pairs_per_epoch"] == 8 and record.steps_per_epoch == 2
    assert len(record.thresholds) == record.task.num_labels
    assert "out-of-fold probabilities" in record.validation
    assert metrics["thresholds"] == dict(zip(record.task.label_names, record.thresholds))
    assert set(metrics["test"]) >= {"f1_micro", "at_threshold_0.5"}


def test_with_a_validation_split_the_head_is_calibrated_and_thresholds_tuned_after(
        tmp_path, tiny_sentence_encoder_dir):
    from tfemotion.training.calibrate import calibrate_run

    folder = write_multi_label_dataset(tmp_path / "data", sizes=(40, 12, 4))
    data = DataConfig(source=str(folder))
    config = FinetuneConfig(model=str(tiny_sentence_encoder_dir), recipe="contrastive",
                            pair_sampling="oversampling", max_pairs=8, pair_batch_size=4,
                            batch_size=16)
    metrics = train(load_splits(data), data, config, tmp_path / "run", verbose=0)
    record = RunRecord.load(RunFolder(tmp_path / "run"))
    assert len(record.temperatures) == record.task.num_labels  # one per label
    assert record.calibration.endswith("fitted on the validation split (12 texts)")
    assert set(metrics["calibration"]["validation"]) == {"before", "after"}
    # the thresholds decide on the calibrated probabilities: calibrate_run, which fits both
    # again on the same texts, finds the same
    report = calibrate_run(tmp_path / "run")
    assert report["temperatures"] == pytest.approx(record.temperatures, abs=1e-3)
    assert report["thresholds"] == list(record.thresholds)


def test_calibrate_run_refuses_a_contrastive_run_without_held_out_texts(few_run):
    from tfemotion.training.calibrate import calibrate_run

    with pytest.raises(ValueError, match="nothing to fit a temperature on"):
        calibrate_run(few_run[0])  # refused before anything is written
