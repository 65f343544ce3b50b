"""The task a model is trained for: its label names and whether a text carries one or several.

``Task`` is decided once, where the data is loaded (``tfemotion.data.task_of``) or where a run
or an export is read (their records hold it), and handed to every stage: exploration, the
baseline, fine-tuning, evaluation, export and prediction never work it out again from a
dataset, a model config or the keys of a result. What follows from it (the number of labels,
the metric an epoch is judged by, the figures a report leads with, the ``problem_type`` that
transformers' model configs expect) is answered here and nowhere else.

This module imports nothing heavy (numpy only when ``multi_hot`` is called), so that processes
with TensorFlow alone (an export's verification, a Beam worker) can read it.

Example:
    >>> task = Task(("neg", "pos"))
    >>> task.num_labels, task.selection_metric, task.hf_problem_type
    (2, 'f1_weighted', 'single_label_classification')
    >>> Task(("joy", "fear", "anger"), MULTI_LABEL).multi_hot([[0, 2], []]).tolist()
    [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

# One label per text, or any number of labels per text.
SINGLE_LABEL, MULTI_LABEL = "single_label", "multi_label"
PROBLEM_TYPES = (SINGLE_LABEL, MULTI_LABEL)
# What transformers' model configs call each kind (its pipeline then uses softmax or sigmoid).
HF_PROBLEM_TYPES = {SINGLE_LABEL: "single_label_classification",
                    MULTI_LABEL: "multi_label_classification"}
# A multi-label model's decision threshold when none was tuned.
DEFAULT_THRESHOLD = 0.5
# The figures a report leads with, in the order it shows them.
SINGLE_LABEL_METRICS = ("accuracy", "f1_weighted", "f1_macro")
MULTI_LABEL_METRICS = ("f1_micro", "f1_macro", "f1_weighted", "subset_accuracy", "hamming_loss")


@dataclass(frozen=True)
class Task:
    """Label names in id order and the problem type; everything else follows from them.

    Attributes:
        label_names: tuple of str. The name of each label id.
        problem_type: str. ``single_label`` (softmax, one label per text) or ``multi_label``
            (a sigmoid per label, any number of labels per text).

    Raises:
        ValueError: no label names, a name given twice or empty, or an unknown problem type.

    Example:
        >>> Task(("a", "a"))
        Traceback (most recent call last):
        ...
        ValueError: label_names must be distinct non-empty names. Received: label_names=('a', 'a')
    """

    label_names: tuple[str, ...]
    problem_type: str = SINGLE_LABEL

    def __post_init__(self) -> None:
        names = tuple(str(name) for name in self.label_names)
        if not names or len(set(names)) != len(names) or not all(names):
            raise ValueError("label_names must be distinct non-empty names. "
                             f"Received: label_names={tuple(self.label_names)!r}")
        if self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES}. "
                             f"Received: problem_type={self.problem_type!r}")
        object.__setattr__(self, "label_names", names)

    @property
    def num_labels(self) -> int:
        """How many labels (the width of the classification head)."""
        return len(self.label_names)

    @property
    def multi_label(self) -> bool:
        """Whether a text may carry several labels (sigmoid outputs, binary cross-entropy)."""
        return self.problem_type == MULTI_LABEL

    @property
    def hf_problem_type(self) -> str:
        """The ``problem_type`` of a transformers model config for this task."""
        return HF_PROBLEM_TYPES[self.problem_type]

    @property
    def selection_metric(self) -> str:
        """The validation figure an epoch is judged by: micro F1 (multi-label) or weighted F1.

        Example:
            >>> Task(("a", "b"), MULTI_LABEL).selection_metric
            'f1_micro'
        """
        return "f1_micro" if self.multi_label else "f1_weighted"

    @property
    def headline_metrics(self) -> tuple[str, ...]:
        """The figures a report of this task leads with, in order.

        Example:
            >>> Task(("a", "b")).headline_metrics
            ('accuracy', 'f1_weighted', 'f1_macro')
        """
        return MULTI_LABEL_METRICS if self.multi_label else SINGLE_LABEL_METRICS

    def multi_hot(self, label_lists: Sequence[Sequence[int]]) -> Any:
        """``[texts, num_labels]`` float32 array: 1 where a text carries the label.

        Example:
            >>> Task(("a", "b", "c"), MULTI_LABEL).multi_hot([[1]]).tolist()
            [[0.0, 1.0, 0.0]]
        """
        import numpy as np

        out = np.zeros((len(label_lists), self.num_labels), np.float32)
        for row, ids in enumerate(label_lists):
            out[row, list(ids)] = 1.0
        return out

    def require_same(self, other: "Task", what: str) -> None:
        """Refuse ``other`` (the task of some data or model) unless it is this one.

        Args:
            other: Task. The task found elsewhere.
            what: str. What ``other`` is the task of, for the message.

        Raises:
            ValueError: the label names or the problem type differ.

        Example:
            >>> Task(("a", "b")).require_same(Task(("b", "a")), "the data")
            Traceback (most recent call last):
            ...
            ValueError: the data is single_label with labels ['b', 'a'], not single_label with labels ['a', 'b']. Received: labels=['b', 'a']
        """
        if other != self:
            raise ValueError(f"{what} is {other.problem_type} with labels "
                             f"{list(other.label_names)}, not {self.problem_type} with labels "
                             f"{list(self.label_names)}. Received: labels="
                             f"{list(other.label_names)}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (what run and export records hold).

        Example:
            >>> Task.from_dict(Task(("a", "b")).to_dict()) == Task(("a", "b"))
            True
        """
        return {"label_names": list(self.label_names), "problem_type": self.problem_type}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Task":
        """Rebuild a task from ``to_dict``'s form (a missing problem type is single-label: the
        records written before multi-label data came in)."""
        return cls(tuple(values["label_names"]), values.get("problem_type") or SINGLE_LABEL)
