"""The rows bulk scoring writes: JSON, CSV and Parquet agree on the columns."""

from __future__ import annotations

import csv
import io

from tfemotion.scoring.outputs import (columns, csv_line, failed_record, flat_row,
                                       parquet_schema, scored_row)
from tfemotion.scoring.sources import DeadLetter, Record
from tfemotion.task import MULTI_LABEL, Task

TASK = Task(("anger", "joy", "fear"), MULTI_LABEL)
RESULT = {"label": "joy", "label_id": 1, "scores": [0.1, 0.9, 0.6], "labels": ["joy", "fear"]}


def test_a_multi_label_row_holds_the_predicted_labels_and_every_score():
    row = scored_row(Record("in.jsonl", 4, "wow", "a7"), RESULT, TASK)
    assert row == {"id": "a7", "source": "in.jsonl", "line": 4, "label": "joy", "label_id": 1,
                   "scores": {"anger": 0.1, "joy": 0.9, "fear": 0.6}, "labels": ["joy", "fear"]}


def test_csv_and_parquet_rows_have_the_columns_of_the_schema_in_order():
    flat = flat_row(scored_row(Record("in.txt", 1, "wow"), RESULT, TASK), TASK)
    assert list(flat) == columns(TASK) == parquet_schema(TASK).names


def test_a_csv_line_reads_back_as_the_values_written():
    values = ['say "hi", then', 3, None, ["joy", "fear"], 0.25]
    [read] = list(csv.reader(io.StringIO(csv_line(values))))
    assert read == ['say "hi", then', "3", "", "joy|fear", "0.25"]


def test_a_failed_text_keeps_its_source_and_line():
    dead = failed_record(Record("in.txt", 9, "x" * 500), "the export failed")
    assert dead == DeadLetter("in.txt", 9, "the export failed", "x" * 200)
    assert parquet_schema(None, dead=True).names == list(dead.to_dict())
