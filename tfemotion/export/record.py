"""The export's own description: ``assets.extra/tfemotion_export.json``, as a typed record.

The exporter writes it; ``predict`` on an export, bulk scoring and anyone else who reads an
export read it through ``ExportRecord.load``, never by hand. It holds the export's task (label
names, problem type, a multi-label export's decision thresholds), its maximum length, whether it
takes raw text (and if not, why), its signatures, how it was built (length groups, precision,
warm-up batch sizes, tokenizer) and the TensorFlow that wrote and checked it.

Like ``tfemotion.task`` this module imports nothing heavy: a process with TensorFlow alone reads
it. Exports written before the record had a problem type read as single-label.

Example:
    >>> record = ExportRecord(task=Task(("neg", "pos")), max_length=128)
    >>> ExportRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    True
    >>> ExportRecord.load(export_dir).task.label_names[:2]
    ('sadness', 'joy')
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tfemotion.export.signatures import EXPORT_INFO_FILE
from tfemotion.task import Task


@dataclass(frozen=True)
class ExportRecord:
    """What one exported version is.

    Attributes:
        task: Task. The label names (the classes of ``classify``) and the problem type.
        max_length: int. Texts are truncated to this many tokens.
        thresholds: list of float or None. A multi-label export's decision threshold per label.
        raw_text: bool. Whether the raw-text signatures exist (the tokenizer is in the graph).
        unsupported_reason: str or None. Why the tokenizer could not be exported, if it could not.
        signatures: list of str. The signature names.
        length_group_size: int. Texts per length group in the raw-text signatures (0: none).
        precision: str. The compute precision of the graph.
        warmup_batch_sizes: list of int. Batch sizes of the warm-up requests.
        tensorflow_version: str. The TensorFlow that wrote the export.
        tokenizer: dict. The in-graph tokenizer's description (class, algorithm, settings).
        tensorflow_serving_check: dict or None. The check under TF Serving's TensorFlow.
        temperatures: list of float or None. The calibration built into the graph: the
            probabilities are those of ``logits / T`` (one ``T``, or one per label); None
            (exports written before calibration, or of an uncalibrated run): ``T = 1``.
        long_texts: str. ``windows``: longer texts are read in windows of ``max_length``
            overlapping by ``stride`` tokens, their logits pooled by ``window_pooling``, at most
            ``max_windows`` per run; ``truncate`` (and exports written before windows): cut.
        stride, max_windows: int or None. The windows' overlap and cap (``windows`` only).
        window_pooling: str or None. ``mean`` or ``max`` of the windows' logits.
    """

    task: Task
    max_length: int
    thresholds: Optional[list[float]] = None
    raw_text: bool = True
    unsupported_reason: Optional[str] = None
    signatures: list[str] = field(default_factory=list)
    length_group_size: int = 0
    precision: str = "float32"
    warmup_batch_sizes: list[int] = field(default_factory=list)
    tensorflow_version: str = ""
    tokenizer: dict[str, Any] = field(default_factory=dict)
    tensorflow_serving_check: Optional[dict[str, Any]] = None
    temperatures: Optional[list[float]] = None
    long_texts: str = "truncate"
    stride: Optional[int] = None
    max_windows: Optional[int] = None
    window_pooling: Optional[str] = None

    @property
    def labels(self) -> tuple[str, ...]:
        """The label names in id order."""
        return self.task.label_names

    def replace(self, **changes: Any) -> "ExportRecord":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form of ``tfemotion_export.json`` (``labels`` and ``problem_type`` for the
        task, as the file has always held it)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name != "task"}
        return {"labels": list(self.task.label_names), "problem_type": self.task.problem_type,
                **values}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ExportRecord":
        """Rebuild the record; keys this version does not know are ignored (a newer export)."""
        task = Task.from_dict({"label_names": values["labels"],
                               "problem_type": values.get("problem_type")})
        known = {f.name for f in dataclasses.fields(cls)} - {"task"}
        return cls(task=task, **{k: v for k, v in values.items() if k in known})

    def save(self, version_dir: Any) -> Path:
        """Write the record into a version folder; returns its path."""
        path = Path(version_dir) / EXPORT_INFO_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, version_dir: Any) -> "ExportRecord":
        """Read the record of a version folder.

        Raises:
            FileNotFoundError: the folder has no record (not an export of tfemotion).
            ValueError: the file is not such a record (the message names it).
        """
        path = Path(version_dir) / EXPORT_INFO_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: {version_dir} is not an export written "
                                    "by `tfemotion export`")
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path} is not a tfemotion export record: {error}") from error
