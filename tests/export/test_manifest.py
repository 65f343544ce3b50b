"""The export's manifest: a copy is complete only when every listed file matches."""

from __future__ import annotations

from tfemotion.export.manifest import _main, check_manifest, write_manifest
from tfemotion.export.signatures import MANIFEST_FILE


def _version(folder):
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"w" * 5000)
    (folder / "saved_model.pb").write_bytes(b"graph")
    return folder


def test_a_complete_copy_checks_and_each_kind_of_incomplete_one_is_named(tmp_path):
    folder = _version(tmp_path / "1")
    write_manifest(folder)
    assert check_manifest(folder) == []
    lines = (folder / MANIFEST_FILE).read_text().splitlines()
    assert lines[-1] == "# tfemotion manifest: 2 files"
    assert [line.split("  ")[1] for line in lines[:-1]] == [
        "saved_model.pb", "variables/variables.data-00000-of-00001"]

    shard = folder / "variables" / "variables.data-00000-of-00001"
    shard.write_bytes(b"w" * 10)  # a partial upload
    assert check_manifest(folder) == ["variables/variables.data-00000-of-00001: checksum differs"]
    shard.unlink()
    assert check_manifest(folder) == ["variables/variables.data-00000-of-00001: missing"]
    manifest = folder / MANIFEST_FILE
    manifest.write_text("\n".join(lines[:1]) + "\n")  # cut short while it was copied
    assert check_manifest(folder) == ["assets.extra/tfemotion.sha256: cut short or not a manifest"]


def test_old_exports_get_a_manifest_from_the_command_line(tmp_path, capsys):
    folder = _version(tmp_path / "1")
    assert _main([str(folder)]) == 0
    assert check_manifest(folder) == []
    assert _main([str(tmp_path)]) == 1
    assert "not an export version folder" in capsys.readouterr().out
