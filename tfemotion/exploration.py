"""Looking at the data: class balance and text lengths, as in the book's chapter 2.

Example:
    >>> from tfemotion.config import DataConfig
    >>> summary = explore(DataConfig(source="data/emotion"), "out/explore")  # doctest: +SKIP
    >>> summary["splits"]["train"]["rows"]  # doctest: +SKIP
    16000
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from tfemotion.config import DataConfig
from tfemotion.files import new_figure, save_figure, write_json

SUMMARY_FILE = "summary.json"
CLASS_PLOT_FILE = "class_distribution.png"
WORDS_PLOT_FILE = "words_per_text.png"


def split_frames(dataset_dict: Any) -> Any:
    """All splits as one DataFrame with ``split``, ``label_name`` and ``words`` columns.

    Example:
        >>> frame = split_frames(splits)  # doctest: +SKIP
        >>> frame.groupby("split").size()["train"]  # doctest: +SKIP
        16000
    """
    import pandas as pd

    from tfemotion.data import to_dataframe

    frames = []
    for split, dataset in dataset_dict.items():
        frame = to_dataframe(dataset)
        frame.insert(0, "split", split)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    names = list(next(iter(dataset_dict.values())).features["label"].names)
    frame["label_name"] = pd.Categorical(frame["label_name"], categories=names, ordered=True)
    frame["words"] = frame["text"].str.split().str.len()
    return frame


def summarize(dataset_dict: Any, tokenizer: Any = None, max_length: Optional[int] = None) -> dict:
    """Rows, label counts and words per text for each split; token lengths with a tokenizer.

    Args:
        dataset_dict: DatasetDict. As returned by ``tfemotion.data.load_splits``.
        tokenizer: optional Hugging Face tokenizer. Adds ``tokens_mean``, ``tokens_max`` and
            ``share_longer_than_max`` (texts that would be truncated) per split.
        max_length: optional int. The model's maximum length, needed with ``tokenizer``.

    Returns:
        ``{"label_names": [...], "splits": {split: {"rows", "labels", "words_mean", "words_max", ...}}}``.

    Example:
        >>> summarize(splits)["splits"]["validation"]["labels"]["joy"]  # doctest: +SKIP
        704
    """
    from tfemotion.data import label_names

    names = label_names(dataset_dict)
    frame = split_frames(dataset_dict)
    summary: dict[str, Any] = {"label_names": names, "splits": {}}
    for split, group in frame.groupby("split", sort=False):
        counts = group["label_name"].value_counts()
        stats = {
            "rows": int(len(group)),
            "labels": {name: int(counts.get(name, 0)) for name in names},
            "words_mean": round(float(group["words"].mean()), 3),
            "words_max": int(group["words"].max()),
        }
        if tokenizer is not None:
            stats.update(_token_stats(list(group["text"]), tokenizer, max_length))
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
        >>> plot_class_distribution(split_frames(splits), "out/classes.png")  # doctest: +SKIP
        PosixPath('out/classes.png')
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
        >>> plot_words_per_text(split_frames(splits), "out/words.png")  # doctest: +SKIP
        PosixPath('out/words.png')
    """
    part = frame[frame["split"] == split]
    fig, ax = new_figure(max(6, 1.1 * part["label_name"].nunique()), 4.5)
    part.boxplot("words", by="label_name", grid=False, showfliers=False, color="black", ax=ax)
    fig.suptitle("")
    ax.set_title(f"Words per text ({split})")
    ax.set_xlabel("")
    return save_figure(fig, path)


def explore(data_config: DataConfig, out_dir: str | Path, model: Optional[str] = None,
            max_length: Optional[int] = None, dataset_dict: Any = None) -> dict:
    """Load the data, write ``summary.json`` and the two plots to ``out_dir``.

    Args:
        data_config: DataConfig. The data to look at.
        out_dir: str or Path. Output folder (created).
        model: optional str. Checkpoint whose tokenizer adds token-length statistics.
        max_length: optional int. Overrides the model's maximum length.
        dataset_dict: optional DatasetDict, already loaded (then ``data_config`` is not read).

    Returns:
        The summary dict written to ``summary.json``.

    Example:
        >>> explore(DataConfig(source="data/"), "out/explore")["label_names"]  # doctest: +SKIP
        ['sadness', 'joy', 'love', 'anger', 'fear', 'surprise']
    """
    from tfemotion.data import load_splits

    splits = dataset_dict if dataset_dict is not None else load_splits(data_config)
    tokenizer = None
    if model is not None:
        from tfemotion.checkpoints import load_tokenizer, model_max_length

        tokenizer = load_tokenizer(model)
        max_length = model_max_length(tokenizer, requested=max_length)
    summary = summarize(splits, tokenizer, max_length)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    frame = split_frames(splits)
    plot_class_distribution(frame, out / CLASS_PLOT_FILE)
    plot_words_per_text(frame, out / WORDS_PLOT_FILE)
    write_json(summary, out / SUMMARY_FILE)
    return summary
