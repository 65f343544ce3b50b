"""Error analysis tables."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from tfemotion.evaluation.errors import (error_tables, markdown_table, multi_label_error_tables,
                                         write_table)


def test_error_tables_sort_by_loss_with_label_names():
    from datasets import Dataset

    dataset = Dataset.from_dict({"text": ["t0", "t1", "t2", "t3"], "label": [0, 1, 1, 0]})
    losses = np.array([0.5, 3.0, 0.1, 1.0])
    highest, lowest = error_tables(dataset, losses, np.array([0, 0, 1, 1]), ["neg", "pos"], n=2)
    assert highest["text"].tolist() == ["t1", "t3"]
    assert highest[["label", "predicted_label"]].values.tolist() == [["pos", "neg"], ["neg", "pos"]]
    assert lowest["text"].tolist() == ["t2", "t0"]
    with pytest.raises(ValueError, match="positive"):
        error_tables(dataset, losses, np.zeros(4, int), ["neg", "pos"], n=0)


def test_write_table_writes_csv_and_escaped_markdown(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"text": ["a | b", "line\nbreak"], "loss": [1.23456, 0.5]})
    files = write_table(frame, tmp_path / "errors.csv")
    rows = list(csv.DictReader(files["csv"].open()))
    assert rows[0]["text"] == "a | b" and float(rows[0]["loss"]) == pytest.approx(1.23456)
    lines = files["md"].read_text().splitlines()
    assert lines == ["| text | loss |", "| --- | ---: |", "| a \\| b | 1.2346 |",
                     "| line break | 0.5000 |"]
    assert markdown_table(frame) == files["md"].read_text()


def test_multi_label_error_tables_join_the_gold_and_predicted_names():
    from datasets import Dataset

    dataset = Dataset.from_dict({"text": ["a", "b", "c"],
                                 "label": [[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]})
    predicted = np.array([[1, 0], [0, 1], [1, 1]])
    high, low = multi_label_error_tables(dataset, np.array([0.1, 2.0, 1.0]), predicted,
                                         ["joy", "fear"], n=2)
    assert high.to_dict("records") == [
        {"text": "b", "labels": "joy, fear", "predicted_labels": "fear", "loss": 2.0},
        {"text": "c", "labels": "", "predicted_labels": "joy, fear", "loss": 1.0}]
    assert list(low["text"]) == ["a", "c"]
