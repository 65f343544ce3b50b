"""The book's bar chart of one text's probabilities."""

from __future__ import annotations

import pytest

from tfemotion.prediction import plot_probabilities


def test_plot_probabilities_draws_one_bar_per_label_in_percent(tmp_path, monkeypatch):
    from tfemotion.prediction import chart

    figures = []
    original = chart.new_figure
    monkeypatch.setattr(chart, "new_figure",
                        lambda *args: figures.append(original(*args)) or figures[-1])
    result = {"text": "so happy", "scores": {"joy": 0.75, "sadness": 0.25}}
    path = plot_probabilities(result, tmp_path / "plots" / "p.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (_, axes), = figures
    assert [bar.get_height() for bar in axes.patches] == [75.0, 25.0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["joy", "sadness"]
    assert '"so happy"' in axes.get_title()
    with pytest.raises(ValueError, match="scores"):
        plot_probabilities({"label": "joy"}, tmp_path / "q.png")
