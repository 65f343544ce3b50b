"""Loaded splits as a model needs them: their task, token ids, and targets.

``task_of`` reads the task (label names, one or several labels per text) off the splits that
``tfemotion.data.load_splits`` returns; it is the one place where a dataset's features are
looked at for it, and every stage then takes the ``Task`` it returns. ``tokenize`` adds token
ids without padding (each batch is padded later, to its own longest text), and ``with_targets``
turns a multi-label split's lists of label ids into the multi-hot vectors a sigmoid head learns
from.

Example:
    >>> task_of(splits)
    Task(label_names=('sadness', 'joy', 'love', 'anger', 'fear', 'surprise'), problem_type='single_label')
    >>> tokenize(splits["validation"], tokenizer, max_length=64).column_names
    ['text', 'label', 'input_ids', 'attention_mask', 'length']
"""

from __future__ import annotations

from typing import Any, Optional

from tfemotion.task import MULTI_LABEL, SINGLE_LABEL, Task


def task_of(dataset_dict: Any) -> Task:
    """The task of loaded splits: the ``label`` column's names, and whether it holds lists.

    Args:
        dataset_dict: DatasetDict (or a dict of Datasets) whose ``label`` column is a
            ``ClassLabel`` (single-label) or a ``Sequence`` of one (multi-label).

    Raises:
        ValueError: no split, or a ``label`` column without names.

    Example:
        >>> task_of(splits).num_labels
        6
    """
    from datasets import Sequence

    if not dataset_dict:
        raise ValueError("the data has no split. Received: dataset_dict={}")
    feature = next(iter(dataset_dict.values())).features.get("label")
    names = getattr(getattr(feature, "feature", feature), "names", None)
    if not names:
        raise ValueError("the 'label' column must be a ClassLabel with names (or a Sequence of "
                         "one, for multi-label data), as tfemotion.data.load_splits makes it. "
                         f"Received: label={feature!r}")
    return Task(tuple(names), MULTI_LABEL if isinstance(feature, Sequence) else SINGLE_LABEL)


def label_names(dataset_dict: Any) -> list[str]:
    """The label names of loaded splits, in id order (``task_of(dataset_dict).label_names``).

    Example:
        >>> label_names(splits)[:2]
        ['sadness', 'joy']
    """
    return list(task_of(dataset_dict).label_names)


def tokenize(dataset_dict: Any, tokenizer: Any, max_length: int, batch_size: int = 1000) -> Any:
    """Add ``input_ids``, ``attention_mask`` and ``length`` columns: truncated, not padded.

    Padding is left to each batch (dynamic padding), so no text pays for the longest one.

    Args:
        dataset_dict: DatasetDict or Dataset with a ``text`` column.
        tokenizer: a Hugging Face tokenizer.
        max_length: int. Texts are truncated to this many tokens, special tokens included.
        batch_size: int. Texts per tokenizer call.

    Returns:
        The same kind of object with the three new columns.

    Example:
        >>> encoded = tokenize(splits, tokenizer, max_length=64)
        >>> row = encoded["train"][0]
        >>> row["length"] == len(row["input_ids"]) == sum(row["attention_mask"])
        True
    """

    def encode(batch: dict[str, list]) -> dict[str, list]:
        encoding = tokenizer(batch["text"], truncation=True, max_length=max_length,
                             return_token_type_ids=False, return_attention_mask=True)
        return {"input_ids": encoding["input_ids"], "attention_mask": encoding["attention_mask"],
                "length": [len(ids) for ids in encoding["input_ids"]]}

    return dataset_dict.map(encode, batched=True, batch_size=batch_size, desc="Tokenizing")


def with_targets(dataset: Any, task: Task) -> Any:
    """The split(s) with the ``label`` column a model of ``task`` learns from.

    Single-label: unchanged (label ids). Multi-label: each list of label ids becomes a float32
    multi-hot vector of ``task.num_labels``.

    Example:
        >>> from datasets import Dataset
        >>> pairs = Task(("x", "y", "z"), MULTI_LABEL)
        >>> with_targets(Dataset.from_dict({"label": [[0, 2]]}), pairs)[0]["label"]
        [1.0, 0.0, 1.0]
    """
    if not task.multi_label:
        return dataset
    from datasets import Sequence, Value

    def encode(batch: dict[str, list]) -> dict[str, list]:
        return {"label": task.multi_hot(batch["label"]).tolist()}

    first = next(iter(dataset.values())) if hasattr(dataset, "values") else dataset
    features = first.features.copy()
    features["label"] = Sequence(Value("float32"), length=task.num_labels)
    return dataset.map(encode, batched=True, features=features, desc="Multi-hot labels")


def to_dataframe(dataset: Any, task: Optional[Task] = None) -> Any:
    """A pandas DataFrame of a split, with a ``label_name`` column beside the ids.

    Args:
        dataset: Dataset. A loaded split.
        task: Task, optional. The split's task (default: ``task_of`` the split). Multi-label
            splits get a list of names per text.

    Example:
        >>> list(to_dataframe(splits["train"]).columns)
        ['text', 'label', 'label_name']
    """
    task = task or task_of({"split": dataset})
    frame = dataset.to_pandas()
    names = task.label_names
    if task.multi_label:
        frame["label_name"] = [[names[i] for i in ids] for ids in frame["label"]]
    else:
        frame["label_name"] = [names[i] for i in frame["label"]]
    return frame
