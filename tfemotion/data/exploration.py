"""Looking at the data: class balance and text lengths, as in the book's chapter 2.

Multi-label data also gets the number of labels per text and a heat map of the labels that
occur together.

Example:
    >>> import tempfile
    >>> from tfemotion.config import DataConfig
    >>> summary = explore(DataConfig(source=data_dir), tempfile.mkdtemp())
    >>> summary["splits"]["train"]["rows"]
    240
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfemotion.config import DataConfig
from tfemotion.files import new_figure, save_figure, write_json
from tfemotion.task import Task

SUMMARY_FILE = "summary.json"
CLASS_PLOT_FILE = "class_distribution.png"
WORDS_PLOT_FILE = "words_per_text.png"
LABELS_PER_TEXT_PLOT_FILE = "labels_per_text.png"
COOCCURRENCE_PLOT_FILE = "label_cooccurrence.png"


def split_frames(dataset_dict: Any, task: Task) -> Any:
    """All splits as one DataFrame with ``split``, ``label_name`` and ``words`` columns.

    Multi-label data gives one row per (text, label), sharing the text's index, and a
    ``labels_per_text`` column; a text without labels keeps one row with no ``label_name``.

    Example:
        >>> frame = split_frames(splits, task)
        >>> int(frame.groupby("split").size()["train"])
        240
    """
    import pandas as pd

    from tfemotion.data.encoding import to_dataframe

    frames = []
    for split, dataset in dataset_dict.items():
        frame = to_dataframe(dataset, task)
        frame.insert(0, "split", split)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    if task.multi_label:
        frame["labels_per_text"] = frame["label_name"].str.len()
        frame = frame.explode("label_name")
    frame["label_name"] = pd.Categorical(frame["label_name"], categories=list(task.label_names),
                                         ordered=True)
    frame["words"] = frame["text"].str.split().str.len()
    return frame


def summarize(dataset_dict: Any, tokenizer: Any = None, max_length: Optional[int] = None, *,
              task: Optional[Task] = None, frame: Any = None) -> dict:
    """Rows, label counts and words per text for each split; token lengths with a tokenizer.

    Args:
        dataset_dict: DatasetDict. As returned by ``tfemotion.data.load_splits``.
        tokenizer: optional Hugging Face tokenizer. Adds ``tokens_mean``, ``tokens_max`` and
            ``share_longer_than_max`` (texts that would be truncated) per split.
        max_length: optional int. The model's maximum length, needed with ``tokenizer``.
        task: Task, optional. The data's task (default: ``task_of(dataset_dict)``).
        frame: DataFrame, optional. ``split_frames`` of the data, when it is already built.

    Returns:
        ``{"label_names": [...], "problem_type", "splits": {split: {"rows", "labels",
        "words_mean", "words_max", ...}}}``.

    Example:
        >>> summary = summarize(splits)
        >>> sum(summary["splits"]["validation"]["labels"].values())
        60
    """
    from tfemotion.data.encoding import task_of

    task = task or task_of(dataset_dict)
    names, multi = list(task.label_names), task.multi_label
    frame = frame if frame is not None else split_frames(dataset_dict, task)
    summary: dict[str, Any] = {"label_names": names, "problem_type": task.problem_type,
                               "splits": {}}
    for split, group in frame.groupby("split", sort=False):
        counts = group["label_name"].value_counts()
        texts = group[~group.index.duplicated()]
        stats = {
            "rows": int(len(texts)),
            "labels": {name: int(counts.get(name, 0)) for name in names},
            "words_mean": round(float(texts["words"].mean()), 3),
            "words_max": int(texts["words"].max()),
        }
        if multi:
            per_text = texts["labels_per_text"].value_counts().sort_index()
            stats["labels_per_text"] = {str(k): int(v) for k, v in per_text.items()}
            stats["labels_per_text_mean"] = round(float(texts["labels_per_text"].mean()), 3)
        if tokenizer is not None:
            stats.update(_token_stats(list(texts["text"]), tokenizer, max_length))
        summary["splits"][split] = stats
    return summary


def _token_stats(texts: list[str], tokenizer: Any, max_length: Optional[int]) -> dict[str, Any]:
    if max_length is None:
        raise ValueError("max_length is needed with a tokenizer. Received: max_length=None")
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False,
                                             return_attention_mask=False)["input_ids"]]
    return {
        "tokens_mean": round(sum(lengths) / len(lengths), 3),
        "tokens_max": max(lengths),
        "max_length": int(max_length),
        "share_longer_than_max": round(sum(n > max_length for n in lengths) / len(lengths), 6),
    }


def plot_class_distribution(frame: Any, path: str | Path, split: str = "train") -> Path:
    """Horizontal bars of label frequencies in one split, as in the book.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "classes.png")
        >>> plot_class_distribution(split_frames(splits, task), path).stat().st_size > 0
        True
    """
    counts = frame[frame["split"] == split]["label_name"].value_counts(ascending=True)
    fig, ax = new_figure(7, 0.45 * len(counts) + 1.5)
    counts.plot.barh(ax=ax, color="C0")
    ax.set_title(f"Frequency of classes ({split})")
    ax.set_xlabel("texts")
    return save_figure(fig, path)


def plot_words_per_text(frame: Any, path: str | Path, split: str = "train") -> Path:
    """Box plot of words per text by label, as in the book.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "words.png")
        >>> plot_words_per_text(split_frames(splits, task), path).name
        'words.png'
    """
    part = frame[frame["split"] == split]
    fig, ax = new_figure(max(6, 1.1 * part["label_name"].nunique()), 4.5)
    part.boxplot("words", by="label_name", grid=False, showfliers=False, color="black", ax=ax)
    fig.suptitle("")
    ax.set_title(f"Words per text ({split})")
    ax.set_xlabel("")
    return save_figure(fig, path)


def cooccurrence(dataset: Any, task: Task) -> Any:
    """``[labels, labels]`` counts of texts carrying both labels (the diagonal: each label).

    Example:
        >>> from datasets import Dataset
        >>> from tfemotion.task import MULTI_LABEL
        >>> pairs = Dataset.from_dict({"label": [[0, 1], [1], [0, 1]]})
        >>> cooccurrence(pairs, Task(("joy", "love"), MULTI_LABEL)).tolist()
        [[2, 2], [2, 3]]
    """
    hot = task.multi_hot(dataset["label"])
    return (hot.T @ hot).astype(int)


def plot_labels_per_text(frame: Any, path: str | Path, split: str = "train") -> Path:
    """Bars of how many texts carry 0, 1, 2... labels (multi-label data).

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "per_text.png")
        >>> frame = split_frames(multi_label_splits, multi_label_task)
        >>> plot_labels_per_text(frame, path).name
        'per_text.png'
    """
    part = frame[frame["split"] == split]
    counts = part[~part.index.duplicated()]["labels_per_text"].value_counts().sort_index()
    fig, ax = new_figure(6, 3.5)
    counts.plot.bar(ax=ax, color="C0", rot=0)
    ax.set_title(f"Labels per text ({split})")
    ax.set_xlabel("labels")
    ax.set_ylabel("texts")
    return save_figure(fig, path)


def plot_cooccurrence(dataset: Any, task: Task, path: str | Path, split: str = "train") -> Path:
    """Heat map of how often two labels go together on one text (multi-label data).

    Each cell holds the texts carrying both labels; the diagonal, texts carrying the label.

    Example:
        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "cooccurrence.png")
        >>> plot_cooccurrence(multi_label_splits["train"], multi_label_task, path).name
        'cooccurrence.png'
    """
    names = task.label_names
    counts = cooccurrence(dataset, task)
    size = max(5.0, 0.45 * len(names) + 2)
    fig, ax = new_figure(size + 1, size)
    image = ax.imshow(counts, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90)
    ax.set_yticks(range(len(names)), names)
    if len(names) <= 15:
        for (row, column), value in np.ndenumerate(counts):
            ax.text(column, row, str(value), ha="center", va="center", fontsize=8,
                    color="white" if value > counts.max() / 2 else "black")
    fig.colorbar(image, ax=ax, label="texts")
    ax.set_title(f"Labels on the same text ({split})")
    return save_figure(fig, path)


def explore(data_config: DataConfig, out_dir: str | Path, model: Optional[str] = None,
            max_length: Optional[int] = None, dataset_dict: Any = None,
            task: Optional[Task] = None) -> dict:
    """Load the data, write ``summary.json`` and the plots to ``out_dir``.

    The plots: class distribution and words per text; for multi-label data also labels per text
    and label co-occurrence.

    Args:
        data_config: DataConfig. The data to look at.
        out_dir: str or Path. Output folder (created).
        model: optional str. Checkpoint whose tokenizer adds token-length statistics.
        max_length: optional int. Overrides the model's maximum length.
        dataset_dict: optional DatasetDict, already loaded (then ``data_config`` is not read).
        task: Task, optional. The task of ``dataset_dict`` (default: ``task_of`` it).

    Returns:
        The summary dict written to ``summary.json``.

    Example:
        >>> import tempfile
        >>> summary = explore(DataConfig(source=data_dir), tempfile.mkdtemp(), model=checkpoint)
        >>> summary["label_names"][:3], summary["splits"]["train"]["max_length"]
        (['sadness', 'joy', 'love'], 64)
    """
    from tfemotion.data.encoding import task_of
    from tfemotion.data.loading import load_splits

    splits = dataset_dict if dataset_dict is not None else load_splits(data_config)
    task = task or task_of(splits)
    tokenizer = None
    if model is not None:
        from tfemotion.checkpoints import load_tokenizer, model_max_length

        tokenizer = load_tokenizer(model)
        max_length = model_max_length(tokenizer, requested=max_length)
    frame = split_frames(splits, task)
    summary = summarize(splits, tokenizer, max_length, task=task, frame=frame)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_class_distribution(frame, out / CLASS_PLOT_FILE)
    plot_words_per_text(frame, out / WORDS_PLOT_FILE)
    if task.multi_label and "train" in splits:
        plot_labels_per_text(frame, out / LABELS_PER_TEXT_PLOT_FILE)
        plot_cooccurrence(splits["train"], task, out / COOCCURRENCE_PLOT_FILE)
    write_json(summary, out / SUMMARY_FILE)
    return summary
