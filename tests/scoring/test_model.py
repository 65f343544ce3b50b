"""The export on Beam's workers: where it is found, and a failing batch scored text by text."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("apache_beam", reason="the beam extra: pip install 'tfemotion[beam]'")

from support import EMOTIONS, FAIL_MARK, write_scoring_export  # noqa: E402
from tfemotion.scoring.model import ExportModelHandler, local_copy, resolve_export  # noqa: E402


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return write_scoring_export(tmp_path_factory.mktemp("scoring-model") / "emotion" / "1")


def test_a_version_a_model_folder_and_a_run_output_folder_resolve_to_the_highest_version(
        tmp_path, export):
    out = tmp_path / "out"
    for version in ("1", "7", "12"):
        shutil.copytree(export, out / "serving" / "emotion" / version)
    (out / "serving" / "emotion" / "99").mkdir()  # no SavedModel: not a version yet
    assert resolve_export(str(out / "serving" / "emotion" / "7")) == str(
        out / "serving" / "emotion" / "7")
    model = out / "serving" / "emotion"
    assert resolve_export(str(model)) == str(model / "12")
    assert resolve_export(str(out)) == str(out / "serving" / "emotion" / "12")


def test_a_folder_of_several_models_asks_for_one(tmp_path, export):
    for name in ("a", "b"):
        shutil.copytree(export, tmp_path / "serving" / name / "1")
    with pytest.raises(FileNotFoundError, match="holds several models"):
        resolve_export(str(tmp_path))


def test_a_local_export_is_used_where_it_is(export):
    assert local_copy(str(export)) == str(export)


def test_a_failing_batch_is_scored_again_text_by_text(export):
    handler = ExportModelHandler(str(export), max_batch_size=8)
    model = handler.load_model()
    texts = ["so happy and glad", f"a {FAIL_MARK} here", "sad gloomy day"]
    results = [r.inference for r in handler.run_inference(texts, model)]
    assert [r.get("label") for r in results] == ["joy", None, "sadness"]
    assert results[1]["error"].startswith("the export failed on this text: InvalidArgumentError")
    assert all(len(r["scores"]) == len(EMOTIONS) for r in (results[0], results[2]))
    assert handler.batch_elements_kwargs() == {"min_batch_size": 1, "max_batch_size": 8}


def test_workers_report_their_progress_in_files_of_their_own(tmp_path, export):
    handler = ExportModelHandler(str(export), progress_dir=str(tmp_path))
    model = handler.load_model()
    handler.run_inference(["happy"] * 3, model)
    handler.flush_progress()
    [count] = [p.read_text() for p in tmp_path.iterdir()]
    assert count == "3"
