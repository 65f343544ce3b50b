"""The export record: written by the exporter, read back typed; records of older exports load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tfemotion.export.record import ExportRecord
from tfemotion.export.signatures import EXPORT_INFO_FILE
from tfemotion.task import MULTI_LABEL, SINGLE_LABEL, Task

# tfemotion_export.json as exports wrote it before multi-label models (no problem_type, no
# thresholds): such versions keep loading as single-label exports.
OLD_RECORD = {
    "labels": ["sadness", "joy", "love", "anger", "fear", "surprise"], "max_length": 512,
    "raw_text": True, "unsupported_reason": None,
    "signatures": ["classify", "encoded", "encoded_int64", "serving_default", "tokenize"],
    "length_group_size": 12, "precision": "float32", "warmup_batch_sizes": [1, 8, 16, 32, 64, 128],
    "tensorflow_version": "2.21.0",
    "tokenizer": {"lowercase": True, "class": "BertTokenizerFast"},
}


def test_a_record_round_trips_through_its_file(tmp_path):
    record = ExportRecord(task=Task(("a", "b", "c"), MULTI_LABEL), max_length=64,
                          thresholds=[0.3, 0.5, 0.7], signatures=["serving_default"])
    path = record.save(tmp_path)
    assert path == tmp_path / EXPORT_INFO_FILE
    on_disk = json.loads(path.read_text())
    assert on_disk["labels"] == ["a", "b", "c"] and on_disk["problem_type"] == MULTI_LABEL
    assert ExportRecord.load(tmp_path) == record


def test_a_record_of_an_export_written_before_multi_label_models_loads(tmp_path):
    (tmp_path / EXPORT_INFO_FILE).parent.mkdir(parents=True)
    (tmp_path / EXPORT_INFO_FILE).write_text(json.dumps({**OLD_RECORD, "some_new_key": 1}))
    record = ExportRecord.load(tmp_path)
    assert record.task == Task(tuple(OLD_RECORD["labels"]), SINGLE_LABEL)
    assert record.thresholds is None and record.max_length == 512 and record.raw_text


def test_a_missing_or_broken_record_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not an export written by `tfemotion export`"):
        ExportRecord.load(tmp_path)
    (tmp_path / EXPORT_INFO_FILE).parent.mkdir(parents=True)
    (tmp_path / EXPORT_INFO_FILE).write_text('{"max_length": 3}')
    with pytest.raises(ValueError, match="tfemotion_export.json is not a tfemotion export record"):
        ExportRecord.load(tmp_path)


def test_the_exporter_writes_the_record_of_the_run_s_task(verified_export):
    record = ExportRecord.load(verified_export["path"])
    assert record.task == Task(tuple(verified_export["labels"]), SINGLE_LABEL)
    assert record.to_dict() == {k: verified_export[k] for k in record.to_dict()}


def test_an_export_record_written_by_tfemotion_0_1_0_loads(tmp_path):
    fixture = Path(__file__).parents[1] / "fixtures" / "export_record_0.1.0.json"
    (tmp_path / EXPORT_INFO_FILE).parent.mkdir(parents=True)
    shutil.copy(fixture, tmp_path / EXPORT_INFO_FILE)
    record = ExportRecord.load(tmp_path)
    assert record.task == Task(("sadness", "joy", "love", "anger", "fear", "surprise"))
    assert record.max_length == 64 and record.length_group_size == 12
    written = json.loads(fixture.read_text())
    assert {key: record.to_dict()[key] for key in written} == written


def test_an_export_written_before_windows_reads_as_truncating():
    from tfemotion.export.record import ExportRecord

    values = {"labels": ["a", "b"], "max_length": 64}
    record = ExportRecord.from_dict(values)
    assert record.long_texts == "truncate" and record.stride is None
    windowed = record.replace(long_texts="windows", stride=8, max_windows=64, window_pooling="mean")
    assert ExportRecord.from_dict(windowed.to_dict()) == windowed
