"""The main job in process: stages chosen, the data and its task loaded once, sources checked
before any work."""

from __future__ import annotations

import json

import pytest

from tfemotion.config import DataConfig, ExportConfig, FeatureConfig, FinetuneConfig
from tfemotion.pipeline import run_all, stage_dirs, verification_texts


def test_every_stage_has_its_folder():
    dirs = stage_dirs("out")
    assert {stage: path.as_posix() for stage, path in dirs.items()} == {
        "explore": "out/explore", "baseline": "out/baseline", "train": "out/run",
        "evaluate": "out/run", "export": "out/serving", "audit": "out/audit"}


def test_exports_are_verified_on_the_validation_texts_else_the_test_texts(emotion_splits):
    from datasets import DatasetDict

    assert verification_texts(emotion_splits) == list(emotion_splits["validation"]["text"])
    only_test = DatasetDict({"train": emotion_splits["train"], "test": emotion_splits["test"]})
    assert verification_texts(only_test) == list(emotion_splits["test"]["text"])
    assert verification_texts(DatasetDict({"train": emotion_splits["train"]})) == []


def test_run_all_rejects_unknown_stage(tmp_path):
    with pytest.raises(ValueError, match="Received: stages="):
        run_all(DataConfig(source=str(tmp_path)), FeatureConfig(), FinetuneConfig(),
                ExportConfig(), tmp_path, stages=["explore", "deploy"])


def test_run_all_runs_only_the_chosen_stages(emotion_dir, tiny_bert_dir, tmp_path):
    model = str(tiny_bert_dir)
    results = run_all(DataConfig(source=str(emotion_dir)), FeatureConfig(model=model),
                      FinetuneConfig(model=model), ExportConfig(), tmp_path, stages=["explore"])
    assert list(results) == ["task", "explore", "seconds"]
    assert list(results["task"].label_names) == results["explore"]["label_names"]
    assert set(results["seconds"]) == {"load", "explore", "total"}
    assert json.loads((tmp_path / "pipeline.json").read_text())["stages"] == ["explore"]
    assert (tmp_path / "explore" / "summary.json").exists()
    assert not (tmp_path / "baseline").exists()


def test_run_all_names_every_hub_source_it_cannot_reach_at_once(monkeypatch, tmp_path):
    from tfemotion.checkpoints import HubUnreachableError

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(HubUnreachableError) as error:
        run_all(DataConfig(), FeatureConfig(), FinetuneConfig(), ExportConfig(), tmp_path)
    message = str(error.value)
    assert "The dataset 'dair-ai/emotion' and the checkpoint 'distilbert-base-uncased' are " \
           "not local" in message
    assert "make run DATA=PATH MODEL=PATH" in message and "MODEL=minilm" in message
    assert not (tmp_path / "explore").exists()


def test_run_all_runs_the_audit_only_when_named_after_the_other_stages(emotion_dir, tiny_bert_dir,
                                                                       tmp_path, monkeypatch):
    import tfemotion.audit

    from tfemotion.config import AuditConfig

    calls = []

    def fake_audit(data, finetune, audit, out, *, dataset_dict, task, progress):
        calls.append((audit.folds, str(out), len(dataset_dict["train"]), task.num_labels))
        return {"flagged": 0}

    monkeypatch.setattr(tfemotion.audit, "audit_labels", fake_audit)
    model = str(tiny_bert_dir)
    settings = (DataConfig(source=str(emotion_dir)), FeatureConfig(model=model),
                FinetuneConfig(model=model), ExportConfig(), tmp_path)
    results = run_all(*settings, stages=["audit", "explore"], audit_config=AuditConfig(folds=3))
    assert list(results) == ["task", "explore", "audit", "seconds"]
    assert calls == [(3, str(tmp_path), 240, 6)]
    assert json.loads((tmp_path / "pipeline.json").read_text())["stages"] == ["explore", "audit"]
    run_all(*settings, stages=["explore"])
    assert len(calls) == 1
