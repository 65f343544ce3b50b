"""The main job (`tfemotion run`, what `make run` calls) end to end on a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tfemotion.config import DataConfig, ExportConfig, FeatureConfig, FinetuneConfig
from tfemotion.pipeline import run_all, stage_dirs


def test_run_cli_runs_every_stage_and_writes_each_stage_folder(emotion_dir, tiny_bert_dir, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "tfemotion", "run", "--data", str(emotion_dir), "--model",
         str(tiny_bert_dir), "--out", str(out), "--epochs", "1", "--batch-size", "16",
         "--no-verify"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fine-tuned (best epoch 1)" in result.stdout
    dirs = stage_dirs(out)
    summary = json.loads((dirs["explore"] / "summary.json").read_text())
    assert summary["splits"]["train"]["rows"] == 120
    baseline = json.loads((dirs["baseline"] / "metrics.json").read_text())
    assert set(baseline) == {"logistic_regression", "dummy", "features"}
    metrics = json.loads((dirs["train"] / "metrics.json").read_text())
    assert metrics["best_epoch"] == 1 and len(metrics["epochs"]) == 1
    assert (dirs["train"] / "model" / "config.json").exists()
    assert (dirs["train"] / "errors_highest_loss.csv").exists()
    versions = [p.name for p in (dirs["export"] / "emotion").iterdir()]
    assert versions == ["1"]
    assert (dirs["export"] / "emotion" / "1" / "saved_model.pb").exists()


def test_run_all_rejects_unknown_stage(tmp_path):
    with pytest.raises(ValueError, match="Received: stages="):
        run_all(DataConfig(source=str(tmp_path)), FeatureConfig(), FinetuneConfig(),
                ExportConfig(), tmp_path, stages=["explore", "deploy"])


def test_run_all_runs_only_the_chosen_stages(emotion_dir, tiny_bert_dir, tmp_path):
    model = str(tiny_bert_dir)
    results = run_all(DataConfig(source=str(emotion_dir)), FeatureConfig(model=model),
                      FinetuneConfig(model=model), ExportConfig(), tmp_path, stages=["explore"])
    assert list(results) == ["explore"]
    assert (tmp_path / "explore" / "summary.json").exists()
    assert not (tmp_path / "baseline").exists()
