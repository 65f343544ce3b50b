"""Pictures of a classifier's errors: what the figures show, not only that a PNG exists."""

from __future__ import annotations

import numpy as np

from tfemotion.evaluation.metrics import per_label_report
from tfemotion.evaluation.plots import plot_confusion_matrix, plot_label_confusion


def _capture_figures(monkeypatch) -> list:
    from tfemotion.evaluation import plots

    figures = []
    original = plots.new_figure
    monkeypatch.setattr(plots, "new_figure",
                        lambda *args: figures.append(original(*args)) or figures[-1])
    return figures


def test_the_confusion_matrix_is_normalised_by_row_with_every_label(tmp_path, monkeypatch):
    figures = _capture_figures(monkeypatch)
    path = plot_confusion_matrix([0, 0, 1, 2], [0, 1, 1, 1], ["a", "b", "c"], tmp_path / "cm.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    (_, axes), = figures
    assert [t.get_text() for t in axes.get_xticklabels()] == ["a", "b", "c"]
    matrix = axes.images[0].get_array()
    assert np.allclose(matrix, [[0.5, 0.5, 0], [0, 1, 0], [0, 1, 0]])


def test_the_label_decisions_show_each_label_s_counts(tmp_path, monkeypatch):
    figures = _capture_figures(monkeypatch)
    report = per_label_report(np.array([[1, 0], [1, 1], [0, 1]]),
                              np.array([[1, 1], [0, 1], [0, 0]]), ["joy", "fear"])
    plot_label_confusion(report, tmp_path / "labels.png")
    (_, axes), = figures
    bars = {container.get_label(): [bar.get_width() for bar in container]
            for container in axes.containers}
    assert bars["right (true positive)"] == [1, 1]
    assert bars["given wrongly (false positive)"] == [0, 1]
    assert bars["missed (false negative)"] == [1, 1]
