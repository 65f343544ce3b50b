"""Verification in a fresh process, and under TF Serving's TensorFlow: a failing export is never published."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from support import REPO

from tfemotion.config import ExportConfig
from tfemotion.export import ExportVerificationError, export_model


@pytest.fixture(scope="module")
def payload(verified_export, trained_run, tmp_path_factory):
    """What the exporter hands the verifying process for the session's export: the expected
    answers (the Hugging Face tokenizer's ids, the Keras model's probabilities) of a few texts."""
    from tfemotion.export import verification
    from tfemotion.export.graph import Windows
    from tfemotion.export.signatures import signature_table
    from tfemotion.prediction import load_classifier

    model, tokenizer = load_classifier(trained_run[0])
    captured = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verification, "_run_fresh_process",
                      lambda payload: captured.update(payload) or {})
        verification.verify_in_fresh_process(
            Path(verified_export["path"]), model, tokenizer,
            ["i feel so happy", "so sad and gloomy", "scared", "i adore you", "so angry"],
            verified_export["labels"], verified_export["max_length"], True, signature_table(),
            1e-5, None, 0.995, verified_export.get("temperatures"),
            Windows(verified_export["stride"], verified_export["max_windows"],
                    verified_export["window_pooling"]))
    return captured


def _check(payload: dict, tmp_path: Path, monkeypatch) -> dict:
    """The verifying process's check of ``payload``, run in this process."""
    from tfemotion.export import verification

    monkeypatch.setattr(verification, "_FOREIGN", ())  # this process has tfemotion loaded
    (tmp_path / "payload.json").write_text(json.dumps(payload))
    assert verification.main(str(tmp_path / "payload.json"), str(tmp_path / "report.json")) == 0
    return json.loads((tmp_path / "report.json").read_text())


def test_the_check_passes_the_expected_answers(payload, tmp_path, monkeypatch):
    report = _check(payload, tmp_path, monkeypatch)
    assert report["passed"], report["failures"]
    assert report["token_id_mismatches"] == 0 and report["texts"] == 5 + 25


def test_the_check_fails_probabilities_that_differ_by_more_than_the_tolerance(
        payload, tmp_path, monkeypatch):
    shifted = json.loads(json.dumps(payload))
    for batch in shifted["batches"]:
        batch["probabilities"] = (np.asarray(batch["probabilities"]) + 1e-3).tolist()
    report = _check(shifted, tmp_path, monkeypatch)
    assert not report["passed"]
    assert any("probabilities differ from the Keras model's by up to 0.001" in failure
               for failure in report["failures"])


def test_the_check_fails_labels_that_change_within_the_tolerance(payload, tmp_path,
                                                                 monkeypatch):
    swapped = json.loads(json.dumps(payload))
    swapped["tolerance"] = 1.0  # as loose as can be: the labels alone must fail it
    for batch in swapped["batches"]:
        rows = np.asarray(batch["probabilities"])
        for row, (second, first) in zip(rows, np.argsort(rows, axis=1)[:, -2:]):
            row[first], row[second] = row[second], row[first]
        batch["probabilities"] = rows.tolist()
    report = _check(swapped, tmp_path, monkeypatch)
    assert not report["passed"]
    assert any(re.search(r"the same labels as the Keras model on \d+ of \d+ texts .*at least "
                         r"99.5% needed", failure) for failure in report["failures"])


def test_the_check_fails_token_ids_that_differ(payload, tmp_path, monkeypatch):
    changed = json.loads(json.dumps(payload))
    changed["batches"][0]["ids"][0][1] += 1  # one id of "i feel so happy"
    report = _check(changed, tmp_path, monkeypatch)
    assert report["token_id_mismatches"] == 2 and not report["passed"]  # on both paths
    assert report["mismatch_examples"][0]["text"] == "i feel so happy"


def test_an_export_that_fails_verification_is_not_published(classifier_dir, tmp_path,
                                                            monkeypatch):
    from tfemotion.export import verification

    monkeypatch.setattr(verification, "verify_in_fresh_process", lambda *args: {
        "passed": False, "failures": ["serving_default: probabilities differ"]})
    with pytest.raises(ExportVerificationError, match="probabilities differ") as raised:
        export_model(classifier_dir, ExportConfig(base_path=str(tmp_path)))
    assert raised.value.report["passed"] is False
    assert list((tmp_path / "emotion").iterdir()) == []  # neither a version nor a temp folder
    with pytest.raises(ValueError, match="precision must be one of"):
        ExportConfig(precision="int8")


def test_export_is_checked_in_the_tensorflow_of_the_pinned_serving_release(verified_export,
                                                                           serving_python):
    """make test builds .venv-serving with the TensorFlow of serving/.env's release; every
    verified export then loads there through the session path and replays its warm-up."""
    if not serving_python:
        pytest.skip("needs the serving environment: make test builds .venv-serving")
    report = verified_export
    env = dict(line.split("=", 1) for line in
               (REPO / "serving" / ".env").read_text().splitlines()
               if line and not line.startswith("#"))
    minor = ".".join(env["TF_SERVING_VERSION"].split(".")[:2])
    check = report["tensorflow_serving_check"]
    assert check["passed"] and check["warmup_records"] == report["warmup_requests"]
    assert check["tensorflow"].startswith(minor) and check["tensorflow_serving"].startswith(minor)
    info = json.loads(Path(report["path"], "assets.extra", "tfemotion_export.json").read_text())
    assert info["tensorflow_serving_check"] == check
    assert info["tensorflow_version"] == tf.__version__


@pytest.mark.parametrize("python", ["/bin/false", "/nonexistent/python"])
def test_an_export_that_fails_in_the_serving_release_is_not_published(classifier_dir, tmp_path,
                                                                      monkeypatch, python):
    import tfemotion.export.exporter as exporting

    # The fresh-process verification passes (its own tests fail it); the release's does not.
    monkeypatch.setattr(exporting, "_verify", lambda *args: {"passed": True})
    monkeypatch.setenv("TFEMOTION_SERVING_PYTHON", python)  # an environment that fails
    config = ExportConfig(base_path=str(tmp_path / "models"))
    with pytest.raises(ExportVerificationError, match="does not load in TensorFlow Serving's"):
        export_model(classifier_dir, config)
    assert [p.name for p in (tmp_path / "models" / "emotion").iterdir()] == []
