"""What bulk scoring writes: one row per scored record, one per dead record, in JSONL, CSV or
Parquet, and the counts of the run.

A scored row holds the record's id (``null`` when the input has none), its source file and line,
the most probable label and its id, every label's probability and, for a multi-label export,
the predicted labels. JSONL keeps the probabilities as an object ``scores``; CSV and Parquet have
a column ``score_<label>`` per label (and ``labels`` joined by ``|`` in CSV, a list in Parquet).

Example:
    >>> from tfemotion.task import Task
    >>> row = scored_row(Record("a.txt", 3, "wow"), {"label": "joy", "label_id": 1,
    ...                  "scores": [0.25, 0.75]}, Task(("anger", "joy")))
    >>> row
    {'id': None, 'source': 'a.txt', 'line': 3, 'label': 'joy', 'label_id': 1, 'scores': {'anger': 0.25, 'joy': 0.75}}
    >>> flat_row(row, Task(("anger", "joy")))
    {'id': None, 'source': 'a.txt', 'line': 3, 'label': 'joy', 'label_id': 1, 'score_anger': 0.25, 'score_joy': 0.75}
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from tfemotion.scoring.sources import DeadLetter, Record
from tfemotion.task import Task

SCORES_SUFFIX = ""
DEAD_LETTER_SUFFIX = "-dead-letter"
COUNTS_SUFFIX = "-counts.json"
DEAD_COLUMNS = ("source", "line", "reason", "content")


def scored_row(record: Record, result: dict[str, Any], task: Task) -> dict[str, Any]:
    """The output row of a scored record (``result``: ``ExportModelHandler``'s)."""
    row = {"id": record.id, "source": record.source, "line": record.line,
           "label": result["label"], "label_id": result["label_id"],
           "scores": dict(zip(task.label_names, result["scores"]))}
    if task.multi_label:
        row["labels"] = result["labels"]
    return row


def failed_record(record: Record, reason: str) -> DeadLetter:
    """The dead letter of a record the export failed on."""
    return DeadLetter(record.source, record.line, reason, record.text[:200])


def columns(task: Task) -> list[str]:
    """The columns of a CSV or Parquet output, in order.

    Example:
        >>> from tfemotion.task import MULTI_LABEL
        >>> columns(Task(("a", "b"), MULTI_LABEL))
        ['id', 'source', 'line', 'label', 'label_id', 'score_a', 'score_b', 'labels']
    """
    names = ["id", "source", "line", "label", "label_id"]
    names += [f"score_{label}" for label in task.label_names]
    return names + (["labels"] if task.multi_label else [])


def flat_row(row: dict[str, Any], task: Task) -> dict[str, Any]:
    """A scored row with one column per label's probability (CSV, Parquet)."""
    flat = {k: v for k, v in row.items() if k not in ("scores", "labels")}
    flat.update({f"score_{label}": p for label, p in row["scores"].items()})
    if task.multi_label:
        flat["labels"] = row["labels"]
    return flat


def jsonl_line(row: dict[str, Any]) -> str:
    """One JSON Lines line (UTF-8 kept as is).

    Example:
        >>> jsonl_line({"label": "joy", "text": "é"})
        '{"label": "joy", "text": "é"}'
    """
    return json.dumps(row, ensure_ascii=False)


def csv_line(values: list[Any]) -> str:
    """One CSV line (quoted as needed, no line end).

    Example:
        >>> csv_line(["a,b", 1, None, ["x", "y"]])
        '"a,b",1,,x|y'
    """
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(
        ["" if v is None else "|".join(v) if isinstance(v, list) else v for v in values])
    return buffer.getvalue()


def parquet_schema(task: Task, dead: bool = False) -> Any:
    """The pyarrow schema of the scores (or, with ``dead``, of the dead-letter records)."""
    import pyarrow as pa

    if dead:
        return pa.schema([("source", pa.string()), ("line", pa.int64()), ("reason", pa.string()),
                          ("content", pa.string())])
    fields = [("id", pa.string()), ("source", pa.string()), ("line", pa.int64()),
              ("label", pa.string()), ("label_id", pa.int64())]
    fields += [(f"score_{label}", pa.float64()) for label in task.label_names]
    if task.multi_label:
        fields.append(("labels", pa.list_(pa.string())))
    return pa.schema(fields)
