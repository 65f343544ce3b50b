"""The run folder contract: its record's JSON round trip, old records, finding a run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tfemotion.config import DataConfig, FinetuneConfig, choose_schedule
from tfemotion.runfolder import RunFolder, RunRecord, find_run
from tfemotion.task import MULTI_LABEL, Task

FIXTURES = Path(__file__).parent / "fixtures"


def _record(**changes) -> RunRecord:
    finetune = FinetuneConfig(model="ckpt", epochs=3)
    values = dict(data=DataConfig(source="data"), finetune=finetune, task=Task(("a", "b", "c")),
                  max_length=87, schedule=choose_schedule(finetune, 384), steps_per_epoch=250,
                  versions={"tensorflow": "2.21.0"})
    values.update(changes)
    return RunRecord(**values)


def _finish(folder) -> RunFolder:
    run = RunFolder(folder)
    _record().save(run)
    run.model.mkdir(parents=True)
    (run.model / "config.json").write_text("{}")
    return run


def test_run_record_round_trips_through_its_file(tmp_path):
    record = _record()
    path = record.save(RunFolder(tmp_path))
    assert path == tmp_path / "config.json"
    assert RunRecord.load(RunFolder(tmp_path)) == record
    saved = json.loads(path.read_text())
    assert saved["label_names"] == ["a", "b", "c"] and saved["max_length"] == 87
    assert saved["schedule"]["learning_rate"] == 2e-4
    assert saved["finetune"]["learning_rate"] is None  # as given: chosen for the checkpoint


def test_run_record_reads_a_record_written_before_it_had_a_schedule(tmp_path):
    old = {"data": {"source": "d"}, "finetune": {"model": "m", "learning_rate": 2e-5,
                                                  "warmup_ratio": 0.0},
           "label_names": ["x", "y"], "max_length": 64, "seed": 42, "strategy": "default"}
    (tmp_path / "config.json").write_text(json.dumps(old))
    record = RunRecord.load(RunFolder(tmp_path))
    assert record.schedule.learning_rate == 2e-5 and record.label_names == ("x", "y")


def test_run_record_names_the_file_that_is_not_a_record(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["BertModel"]}))
    with pytest.raises(ValueError, match=r"config.json is not a tfemotion run record"):
        RunRecord.load(RunFolder(tmp_path))
    with pytest.raises(FileNotFoundError, match="written by `tfemotion train`"):
        RunRecord.load(RunFolder(tmp_path / "nothing"))


def test_find_run_accepts_a_run_folder_or_the_out_folder_of_tfemotion_run(tmp_path):
    run = _finish(tmp_path / "out" / "run")
    assert find_run(run.root) == run
    assert find_run(tmp_path / "out") == run
    with pytest.raises(FileNotFoundError, match="not a finished run folder"):
        find_run(tmp_path)


def test_run_folder_layout_is_the_documented_one():
    run = RunFolder("r")
    assert [p.as_posix() for p in (run.record, run.model, run.metrics, run.history, run.state,
                                   run.logs, run.checkpoint(3), run.evaluation("test"))] == [
        "r/config.json", "r/model", "r/metrics.json", "r/history.csv",
        "r/checkpoints/state.json", "r/logs", "r/checkpoints/epoch-3", "r/evaluation/test"]


def test_a_record_without_a_schedule_gets_the_one_its_settings_imply(tmp_path):
    old = {"data": {"source": "d"}, "finetune": {"model": "m", "recipe": "book-keras"},
           "label_names": ["x", "y"], "max_length": 64}
    (tmp_path / "config.json").write_text(json.dumps(old))
    schedule = RunRecord.load(RunFolder(tmp_path)).schedule
    assert (schedule.learning_rate, schedule.warmup_ratio) == (5e-5, 0.0)


def test_a_record_from_a_newer_tfemotion_is_refused_by_name(tmp_path):
    record = _record().to_dict()
    record["format"] = 99
    (tmp_path / "config.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="written by a newer tfemotion"):
        RunRecord.load(RunFolder(tmp_path))


def test_a_run_record_written_by_tfemotion_0_1_0_loads_with_its_task(tmp_path):
    shutil.copy(FIXTURES / "run_record_0.1.0_multi_label.json", tmp_path / "config.json")
    record = RunRecord.load(RunFolder(tmp_path))
    assert record.task == Task(("sadness", "joy", "love", "anger", "fear", "surprise"),
                               MULTI_LABEL)
    assert record.thresholds == (0.5, 0.56, 0.3, 0.19, 0.47, 0.25)
    assert record.global_threshold == 0.34 and record.schedule.learning_rate == 0.01
    assert record.schedule.epochs == record.finetune.epochs == 8  # the settings held them
    # Written again, the file keeps its keys and values, and the schedule's epochs; the fields
    # added since hold their defaults (None for the record's, the dataclass's for settings).
    written = record.to_dict()
    old = json.loads((tmp_path / "config.json").read_text())
    assert {k: written[k] for k in old if k != "finetune"} == {
        **{k: v for k, v in old.items() if k != "finetune"},
        "schedule": {**old["schedule"], "epochs": 8}}
    assert {k: written["finetune"][k] for k in old["finetune"]} == old["finetune"]
    defaults = FinetuneConfig().to_dict()
    assert {k: v for k, v in written["finetune"].items() if k not in old["finetune"]} == {
        k: defaults[k] for k in written["finetune"] if k not in old["finetune"]}
    assert all(written[k] is None for k in written if k not in old)


def test_recipe_fields_round_trip_and_older_records_read_as_the_recipe_they_name(tmp_path):
    record = _record(recipe="contrastive", recipe_reason="few", validation="none: C by CV",
                     contrastive={"pairs_per_epoch": 1920, "head": "logistic_regression"})
    record.save(RunFolder(tmp_path))
    assert RunRecord.load(RunFolder(tmp_path)) == record
    assert record.recipe_ran == "contrastive"
    older = _record().to_dict()
    for key in ("recipe", "recipe_reason", "validation", "contrastive"):
        del older[key]
    older["finetune"]["recipe"] = "book-keras"
    (tmp_path / "config.json").write_text(json.dumps(older))
    loaded = RunRecord.load(RunFolder(tmp_path))
    assert loaded.recipe is None and loaded.recipe_ran == "book-keras"
    assert loaded.validation is None and loaded.contrastive is None


def test_temperatures_round_trip_and_a_record_without_them_reads_as_t_equal_1(tmp_path):
    record = _record(temperatures=(1.734,), calibration="temperature fitted on validation")
    record.save(RunFolder(tmp_path))
    assert RunRecord.load(RunFolder(tmp_path)) == record
    older = _record().to_dict()
    del older["temperatures"], older["calibration"], older["finetune"]["calibrate"]
    (tmp_path / "config.json").write_text(json.dumps(older))
    loaded = RunRecord.load(RunFolder(tmp_path))
    assert loaded.temperatures is None and loaded.calibration is None  # T = 1

