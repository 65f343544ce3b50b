"""Calibration after training: temperatures in the record, thresholds on calibrated
probabilities, the flag that turns it off, and `tfemotion calibrate` on an existing run."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from support import copy_run

from tfemotion.config import DataConfig, FinetuneConfig, choose_schedule
from tfemotion.evaluation.calibration import fit_temperature, probabilities_of
from tfemotion.evaluation.thresholds import tune_thresholds
from tfemotion.runfolder import RunFolder, RunRecord
from tfemotion.task import MULTI_LABEL, Task
from tfemotion.training.calibrate import CALIBRATION_OFF, calibrate_run, calibrated_record


def _record(task: Task, **settings) -> RunRecord:
    config = FinetuneConfig(**settings)
    return RunRecord(DataConfig(), config, task, 64, choose_schedule(config))


def test_the_record_gets_the_temperature_fitted_on_the_held_out_logits():
    rng = np.random.default_rng(0)
    logits, labels = 4 * rng.normal(size=(300, 3)), rng.integers(0, 3, 300)
    record, fit = calibrated_record(_record(Task(("a", "b", "c"))), logits, labels, "300 texts")
    assert record.temperatures == (fit_temperature(logits, labels),)
    assert record.temperatures[0] > 2  # labels drawn at random: the logits know nothing
    assert record.calibration == "temperature fitted on 300 texts"
    assert fit["after"]["nll"] < fit["before"]["nll"] and record.thresholds is None


def test_calibrate_false_leaves_the_probabilities_raw():
    logits = np.array([[3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])
    record, fit = calibrated_record(_record(Task(("a", "b")), calibrate=False), logits,
                                    [0, 1, 1], "3 texts")
    assert fit is None and record.temperatures is None and record.calibration == CALIBRATION_OFF


def test_multi_label_thresholds_are_tuned_on_the_calibrated_probabilities():
    rng = np.random.default_rng(1)
    task = Task(("a", "b", "c"), MULTI_LABEL)
    true_logits = rng.normal(size=(400, 3)) - 1.0
    targets = (rng.random((400, 3)) < 1 / (1 + np.exp(-true_logits))).astype(int)
    logits = true_logits * np.array([4.0, 1.0, 0.3])  # a too sure, b right, c too shy
    record, _ = calibrated_record(_record(task), logits, targets, "400 texts")
    assert len(record.temperatures) == 3
    assert record.temperatures[0] > 2 and record.temperatures[2] < 0.6
    expected = tune_thresholds(probabilities_of(logits, task, record.temperatures), targets)
    raw = tune_thresholds(probabilities_of(logits, task), targets)
    assert (list(record.thresholds), record.global_threshold) == (expected[0], expected[1])
    assert list(record.thresholds) != raw[0]  # tuned on the raw sigmoids, they would differ


def test_a_trained_run_records_its_temperature_and_reports_calibration(trained_run):
    run, metrics = trained_run
    record = RunRecord.load(RunFolder(run))
    assert record.finetune.calibrate and len(record.temperatures) == 1
    assert record.calibration.startswith("temperature fitted on the validation split")
    calibration = metrics["calibration"]
    assert calibration["temperatures"] == record.temperatures[0]
    for split in ("validation", "test"):
        assert set(calibration[split]) == {"before", "after"}
    # fitted on validation: the NLL there cannot be worse than at T = 1
    assert calibration["validation"]["after"]["nll"] <= calibration["validation"]["before"]["nll"]
    assert (run / "reliability_diagram.png").is_file()
    assert (run / "evaluation" / "test" / "reliability_diagram.png").is_file()


def test_calibrate_run_fits_an_older_run_that_has_no_temperature(trained_run, tmp_path):
    from tfemotion.evaluation import evaluate_run

    run = copy_run(trained_run[0], tmp_path / "run")
    fitted = RunRecord.load(RunFolder(run))
    older = dataclasses.replace(fitted, temperatures=None, calibration=None)
    older.save(RunFolder(run))
    result = evaluate_run(run, "test")  # reads as T = 1: the raw probabilities
    assert result["calibration"]["temperatures"] is None and "after" not in result["calibration"]
    report = calibrate_run(run)
    assert report["previous"] is None and report["fitted_on"].startswith("the validation split")
    again = RunRecord.load(RunFolder(run))
    assert again.temperatures == pytest.approx(fitted.temperatures, abs=1e-3)
    saved = json.loads((run / "config.json").read_text())
    assert saved["temperatures"] == list(again.temperatures)
    result = evaluate_run(run, "test")
    assert result["calibration"]["after"]["nll"] == pytest.approx(
        trained_run[1]["calibration"]["test"]["after"]["nll"], abs=1e-3)
