"""The serving contract: signature tables and TF Serving's version folders."""

from __future__ import annotations

from tfemotion.export.signatures import (PREDICT, SIGNATURES, find_export, is_version_folder,
                                         next_version, signature_table, versions)


def test_the_multi_label_table_changes_serving_default_s_outputs_only():
    single, multi = signature_table(), signature_table(multi_label=True)
    assert single == SIGNATURES
    assert multi[PREDICT]["outputs"] == {"probabilities": "float32", "predicted": "bool",
                                         "labels": "string", "windows": "int64"}
    assert single[PREDICT]["outputs"]["windows"] == "int64"
    assert {k: v for k, v in multi.items() if k != PREDICT} == \
        {k: v for k, v in single.items() if k != PREDICT}


def test_only_integer_folders_are_versions_and_find_export_takes_the_highest(tmp_path):
    for name in ("1", "10", "2", ".tmp-export-3", "4.partial", "v5"):
        (tmp_path / name).mkdir()
    for name in ("1", "2"):
        (tmp_path / name / "saved_model.pb").write_bytes(b"")
    assert versions(tmp_path) == [1, 2, 10] and next_version(tmp_path) == 11
    assert [is_version_folder(n) for n in ("7", "07", "7a", "")] == [True, True, False, False]
    assert find_export(tmp_path) == tmp_path / "2"  # 10 holds no SavedModel yet
    assert find_export(tmp_path / "1") == tmp_path / "1"
