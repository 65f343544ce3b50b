"""An export classifies with TensorFlow alone, from its own record."""

from __future__ import annotations

import shutil

import pytest

from tfemotion.export.signatures import EXPORT_INFO_FILE
from tfemotion.prediction import ExportPredictor


def test_the_export_predictor_reads_task_and_labels_from_the_export(verified_export):
    classify = ExportPredictor(verified_export["path"])
    assert list(classify.record.labels) == verified_export["labels"]
    (result,) = classify(["i feel happy"])
    assert list(result["scores"]) == verified_export["labels"]
    assert result["label"] == max(result["scores"], key=result["scores"].get)


def test_an_export_without_its_record_is_refused_by_name(verified_export, tmp_path):
    copy = shutil.copytree(verified_export["path"], tmp_path / "1")
    (copy / EXPORT_INFO_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="not an export written by `tfemotion export`"):
        ExportPredictor(copy)


def test_a_run_and_its_export_read_a_long_text_the_same_way(verified_export, trained_run):
    from tfemotion.prediction import predict

    long = "i feel so happy today " * 30 + "but now i am scared and sad"
    from_run = predict(trained_run[0], [long, "so sad"])
    from_export = predict(verified_export["path"], [long, "so sad"])
    for a, b in zip(from_run, from_export):
        assert a["label"] == b["label"]
        assert list(a["scores"].values()) == pytest.approx(list(b["scores"].values()), abs=1e-5)
