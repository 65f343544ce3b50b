"""Result files that a reader never sees half written, and figures outside pyplot's state."""

from __future__ import annotations

import json

from tfemotion.files import new_figure, save_figure, write_json


def test_write_json_replaces_a_file_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "deep" / "folder" / "result.json"
    write_json({"a": 1, "text": "Ça va ✓"}, path)
    write_json({"a": 2}, path)
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]
    write_json({"text": "Ça va ✓"}, path)
    assert "Ça va ✓" in path.read_text(encoding="utf-8")  # UTF-8, not \\u escapes


def test_figures_stay_out_of_pyplot_and_save_as_png(tmp_path):
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    figure, axes = new_figure(4, 3, 2, 2)
    assert axes.shape == (2, 2) and plt.get_fignums() == open_before
    path = save_figure(figure, tmp_path / "plots" / "f.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
