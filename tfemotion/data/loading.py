"""Loading labelled texts into a ``DatasetDict`` with a ``ClassLabel`` label column.

Sources: a hub dataset id, a local folder of split files, a single local file (the ``train``
split) or a URL to such a file. Local files (``tfemotion.data.formats``) are ``.txt`` lines
``text;label`` (the book's raw format), ``.csv`` with a ``text,label`` header or ``.jsonl``
objects with ``text`` and ``label``. Every malformed line is reported with its file and line
number; nothing is dropped silently.

Multi-label data (a text may carry several labels) loads into a ``label`` column of
``Sequence(ClassLabel)``: ``.jsonl`` objects with a ``labels`` list, ``.csv``/``.txt`` labels
joined by the label separator (``text;joy,love``), hub data sets with such a column (``labels``
is renamed ``label``). The problem type is told from the data unless the config forces it; the
task of the loaded splits is then ``tfemotion.data.task_of(splits)``.

Label order (id i = name i): an explicit ``labels`` setting, else ``labels.txt`` beside the data,
else the emotion order when the label set is exactly the emotion one, else sorted.

Example:
    >>> from tfemotion.config import DataConfig
    >>> splits = load_splits(DataConfig(source=data_dir))
    >>> splits["train"].features["label"].names
    ['sadness', 'joy', 'love', 'anger', 'fear', 'surprise']
"""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Optional, Sequence
from urllib.parse import urlparse

from tfemotion.checkpoints import is_local_path, require_hub
from tfemotion.config import EMOTION_LABELS, MULTI_LABEL, SINGLE_LABEL, SPLITS, DataConfig
from tfemotion.data.encoding import task_of
from tfemotion.data.formats import FORMATS, DataError, Row, listed_row, read_rows, read_utf8

logger = logging.getLogger(__name__)

# File stems accepted for each split, in order of preference.
SPLIT_STEMS = {"train": ("train",), "validation": ("validation", "val", "valid", "dev"),
               "test": ("test",)}
LABELS_FILE = "labels.txt"
_URL_SCHEMES = ("http", "https", "ftp")
_URL_TIMEOUT_SECONDS = 30


# region Public API


def load_splits(config: DataConfig) -> Any:
    """Load the splits named by ``config.source`` as a ``datasets.DatasetDict``.

    Args:
        config: DataConfig. The source and optional label names.

    Returns:
        A ``DatasetDict`` with some of ``train``, ``validation``, ``test``; columns ``text``
        (string) and ``label`` (``ClassLabel`` with names).

    Raises:
        DataError: a file is malformed (message names file and line), or no split file is found.
        HubUnreachableError: a hub id while the hub cannot be reached.

    Example:
        >>> splits = load_splits(DataConfig(source=data_dir))  # a folder of train/validation/test
        >>> splits["validation"].num_rows
        60
    """
    source = str(config.source)
    if _is_url(source):
        with tempfile.TemporaryDirectory() as folder:
            path = _download(source, Path(folder))
            return _load_local_files({"train": path}, config, labels_file=None)
    if is_local_path(source):
        path = Path(os.path.expanduser(source))
        if path.is_dir():
            return _load_local_files(find_split_files(path), config, labels_file=path / LABELS_FILE)
        return _load_local_files({"train": path}, config, labels_file=path.parent / LABELS_FILE)
    return _load_hub_dataset(source, config)


def find_split_files(folder: Path) -> dict[str, Path]:
    """Map split names to the files of ``folder`` that hold them.

    Args:
        folder: Path. A folder with files such as ``train.txt``, ``val.csv``, ``test.jsonl``.

    Returns:
        ``{"train": Path, "validation": Path, "test": Path}`` for the splits present.

    Raises:
        DataError: no train file, or two files for one split (``train.txt`` and ``train.csv``).

    Example:
        >>> find_split_files(Path(data_dir))["validation"].name
        'validation.txt'
    """
    found: dict[str, Path] = {}
    for split, stems in SPLIT_STEMS.items():
        candidates = [folder / f"{stem}{ext}" for stem in stems for ext in FORMATS]
        present = [p for p in candidates if p.is_file()]
        if len(present) > 1:
            raise DataError(
                f"{folder}: more than one file for the {split} split: "
                f"{[p.name for p in present]}. Keep one."
            )
        if present:
            found[split] = present[0]
    if "train" not in found:
        listing = sorted(p.name for p in folder.iterdir())[:20]
        raise DataError(
            f"{folder}: no train file. Expected train{{{','.join(FORMATS)}}} (and optionally "
            f"validation/val and test files). Received: files={listing}"
        )
    return found



def order_label_names(names: Sequence[str]) -> list[str]:
    """Order a label set: the emotion order when it is exactly the emotion set, else sorted.

    Example:
        >>> order_label_names(["joy", "anger", "fear", "love", "sadness", "surprise"])
        ['sadness', 'joy', 'love', 'anger', 'fear', 'surprise']
        >>> order_label_names(["pos", "neg"])
        ['neg', 'pos']
    """
    if set(names) == set(EMOTION_LABELS):
        return list(EMOTION_LABELS)
    return sorted(set(names))


def save_splits(dataset_dict: Any, folder: str | Path) -> dict[str, Path]:
    """Write splits as ``SPLIT.txt`` (``text;label`` lines) plus ``labels.txt``, for offline use.

    What ``load_splits`` reads back as the same splits, label names and label order: save the
    hub's ``dair-ai/emotion`` once on a machine with the hub, then copy the folder.

    Args:
        dataset_dict: DatasetDict with ``text`` and a ``ClassLabel`` ``label`` (as from
            ``load_splits``).
        folder: str or Path. Created if needed; existing split files are replaced.

    Returns:
        ``{split: path}`` and ``{"labels": path}``.

    Raises:
        DataError: a text holds a line break (one line per example in ``.txt``).

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()  # on a machine with the hub: DataConfig("dair-ai/emotion")
        >>> sorted(save_splits(load_splits(DataConfig(source=data_dir)), folder))
        ['labels', 'test', 'train', 'validation']
        >>> load_splits(DataConfig(source=folder))["train"][0] == splits["train"][0]
        True
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    task = task_of(dataset_dict)
    names, multi = task.label_names, task.multi_label
    written = {}
    for split, dataset in dataset_dict.items():
        lines = []
        for number, (text, label) in enumerate(zip(dataset["text"], dataset["label"]), 1):
            if "\n" in text or "\r" in text:
                raise DataError(f"{split} example {number}: the text holds a line break, which a "
                                f".txt split cannot store. Received: text={text[:60]!r}")
            written_label = ",".join(names[i] for i in label) if multi else names[label]
            lines.append(f"{text};{written_label}\n")
        path = out / f"{split}.txt"
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text("".join(lines), encoding="utf-8")
        temporary.replace(path)
        written[split] = path
    written["labels"] = out / LABELS_FILE
    written["labels"].write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return written



def split_sources(config: DataConfig, split: str = "train",
                  dataset_dict: Optional[Any] = None) -> list[str]:
    """Where each text of ``split`` comes from, in the order ``load_splits`` gives them.

    A local file's text is ``FILE:LINE`` (the line its row ends on, for a ``.csv`` row across
    lines); a hub data set's or a URL's is ``SOURCE SPLIT row N`` (N from 1), since no file
    of ours holds it. ``load_splits`` keeps every row in file order, so row i of the split is
    source i.

    Args:
        config: DataConfig. The source, as ``load_splits`` takes it.
        split: str. Which split.
        dataset_dict: the splits already loaded from ``config``, optional: a hub data set or a
            URL is then not loaded again (only its row count is needed).

    Raises:
        DataError: no such split in a local folder, or a file that ``load_splits`` would refuse.

    Example:
        >>> sources = split_sources(DataConfig(source=data_dir))
        >>> len(sources), sources[0].endswith("train.txt:1")
        (240, True)
    """
    source = str(config.source)
    if is_local_path(source) and not _is_url(source):
        path = Path(os.path.expanduser(source))
        files = find_split_files(path) if path.is_dir() else {"train": path}
        if split not in files:
            raise DataError(f"{source}: no {split} split. Received: splits={sorted(files)}")
        return [f"{row.file}:{row.line}" for row in read_rows(files[split], config.separator)]
    splits = dataset_dict if dataset_dict is not None else load_splits(config)
    if split not in splits:
        raise DataError(f"{source}: no {split} split. Received: splits={sorted(splits)}")
    return [f"{source} {split} row {number}" for number in range(1, len(splits[split]) + 1)]


# endregion
# region Local files


def _load_local_files(files: dict[str, Path], config: DataConfig,
                      labels_file: Optional[Path]) -> Any:
    rows = {split: read_rows(path, config.separator) for split, path in files.items()}
    rows = _apply_problem_type(rows, config)
    names = _explicit_label_names(config, labels_file)
    names = _resolve_label_names(rows, names)
    return _build_dataset_dict(rows, names)


def _apply_problem_type(rows: dict[str, list[Row]], config: DataConfig) -> dict[str, list[Row]]:
    """Tell single- from multi-label data (or take the config's word); split joined labels.

    Raises:
        DataError: both kinds of rows in one data set, a row the forced type cannot read, or
            a text with no label when the config does not allow it.
    """
    every = [row for split in rows.values() for row in split]
    listed = next((row for row in every if row.listed), None)
    scalar = next((row for row in every if not row.listed and row.file.endswith(".jsonl")), None)
    # Only .txt and .csv join labels; a scalar jsonl or hub label stays one label.
    joinable = [row for row in every if row.file.endswith((".txt", ".csv"))]
    if listed and scalar:
        raise DataError(
            f"{scalar.file}:{scalar.line}: a single 'label' here, but a 'labels' list at "
            f"{listed.file}:{listed.line}: a data set is single-label or multi-label, not both")
    if config.problem_type == SINGLE_LABEL and listed:
        raise DataError(f"{listed.file}:{listed.line}: a 'labels' list, but problem_type is "
                        f"{SINGLE_LABEL!r}")
    joined = next((row for row in joinable if config.label_separator in row.label), None)
    if config.problem_type == SINGLE_LABEL or (
            config.problem_type != MULTI_LABEL and not listed and not joined):
        empty = next((row for row in every if not row.label), None)
        if empty:
            raise DataError(f"{empty.file}:{empty.line}: empty label (for multi-label data with "
                            "texts that carry no label: problem_type multi_label, allow_no_label)")
        return rows
    if joinable and config.label_separator == config.separator and any(
            row.file.endswith(".txt") for row in joinable):
        raise DataError(f"{joinable[0].file}: multi-label .txt files need a label separator "
                        f"other than the text separator {config.separator!r}. Received: "
                        f"label_separator={config.label_separator!r}")
    if config.problem_type != MULTI_LABEL:
        first = listed or joined
        logger.info("Multi-label data: %s at %s:%d", "a 'labels' list" if listed else
                    f"labels joined by {config.label_separator!r}", first.file, first.line)
    return {split: [_split_labels(row, config) for row in split_rows]
            for split, split_rows in rows.items()}


def _split_labels(row: Row, config: DataConfig) -> Row:
    if row.listed:
        labels = row.labels
    elif row.file.endswith((".txt", ".csv")):
        labels = tuple(part.strip() for part in row.label.split(config.label_separator)) \
            if row.label else ()
    else:  # a scalar jsonl or hub label: one label
        labels = (row.label,) if row.label else ()
    if any(not name for name in labels):
        raise DataError(f"{row.file}:{row.line}: an empty label name in {row.label!r}")
    if len(set(labels)) != len(labels):
        raise DataError(f"{row.file}:{row.line}: a label given twice in {row.label!r}")
    if not labels and not config.allow_no_label:
        raise DataError(f"{row.file}:{row.line}: no label. If texts without labels are expected, "
                        "allow them (allow_no_label, --allow-no-label)")
    return Row(row.text, row.label, row.file, row.line, listed=True, labels=labels)


def _explicit_label_names(config: DataConfig, labels_file: Optional[Path]) -> Optional[list[str]]:
    if config.labels is not None:
        return list(config.labels)
    if labels_file is None or not labels_file.is_file():
        return None
    names = [line.strip() for line in read_utf8(labels_file).split("\n") if line.strip()]
    if len(names) != len(set(names)):
        raise DataError(f"{labels_file}: label names must be distinct. Received: labels={names}")
    if len(names) < 2:
        raise DataError(f"{labels_file}: needs at least two label names (line i = id i)")
    return names


def _row_labels(row: Row) -> tuple[str, ...]:
    return row.labels if row.listed else (row.label,)


def _all_integer_ids(rows: dict[str, list[Row]]) -> bool:
    return all(label.lstrip("-").isdigit() for split in rows.values() for row in split
               for label in _row_labels(row))


def _resolve_label_names(rows: dict[str, list[Row]], names: Optional[list[str]]) -> list[str]:
    if names is not None:
        return names
    if _all_integer_ids(rows):
        highest = max((int(label) for split in rows.values() for row in split
                       for label in _row_labels(row)), default=1)
        return [str(i) for i in range(max(highest + 1, 2))]
    return order_label_names({label for row in rows.get("train", []) for label in _row_labels(row)})


def _label_id(row: Row, label: str, names: list[str], ids: dict[str, int]) -> int:
    if label in ids:
        return ids[label]
    if label.lstrip("-").isdigit() and 0 <= int(label) < len(names):
        return int(label)
    raise DataError(
        f"{row.file}:{row.line}: label {label!r} is not in the label set "
        f"{names} (labels come from the train split, an explicit list or labels.txt)"
    )


def _build_dataset_dict(rows: dict[str, list[Row]], names: list[str]) -> Any:
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    multi = any(row.listed for split in rows.values() for row in split)
    label_feature = Sequence(ClassLabel(names=names)) if multi else ClassLabel(names=names)
    features = Features({"text": Value("string"), "label": label_feature})
    ids = {name: i for i, name in enumerate(names)}
    splits = {}
    for split in SPLITS:
        if split in rows:
            labels = [[_label_id(r, label, names, ids) for label in r.labels] if multi
                      else _label_id(r, r.label, names, ids) for r in rows[split]]
            splits[split] = Dataset.from_dict({"text": [r.text for r in rows[split]],
                                               "label": labels}, features=features)
    return DatasetDict(splits)


# endregion
# region URLs and the hub


def _is_url(source: str) -> bool:
    return urlparse(source).scheme in _URL_SCHEMES


def _download(url: str, folder: Path) -> Path:
    name = Path(urlparse(url).path).name or "data.txt"
    if Path(name).suffix.lower() not in FORMATS:
        raise DataError(f"{url}: the URL must end in one of {FORMATS} to tell the format")
    target = folder / name
    try:
        with urllib.request.urlopen(url, timeout=_URL_TIMEOUT_SECONDS) as response:
            target.write_bytes(response.read())
    except OSError as error:
        raise DataError(f"{url}: download failed ({error})") from None
    return target


def _load_hub_dataset(source: str, config: DataConfig) -> Any:
    import datasets

    require_hub(source, "dataset", "--data")
    loaded = datasets.load_dataset(source, config.hub_config)
    if "val" in loaded and "validation" not in loaded:
        loaded["validation"] = loaded.pop("val")
    loaded = datasets.DatasetDict({s: loaded[s] for s in SPLITS if s in loaded})
    if "train" not in loaded:
        raise DataError(f"{source}: the hub dataset has no train split")
    columns = loaded["train"].column_names
    if "label" not in columns and "labels" in columns:  # multi-label sets (go_emotions)
        loaded = loaded.rename_column("labels", "label")
        columns = loaded["train"].column_names
    if "text" not in columns or "label" not in columns:
        raise DataError(f"{source}: expected 'text' and 'label' (or 'labels') columns. "
                        f"Received: columns={columns}")
    loaded = loaded.select_columns(["text", "label"])
    feature = loaded["train"].features["label"]
    multi = isinstance(feature, datasets.Sequence)
    if multi and config.problem_type == SINGLE_LABEL:
        raise DataError(f"{source}: the label column holds lists, but problem_type is "
                        f"{SINGLE_LABEL!r}")
    if isinstance(getattr(feature, "feature", feature), datasets.ClassLabel):
        if not multi and config.problem_type == MULTI_LABEL:  # one label each, kept by name
            loaded = loaded.map(lambda row: {"label": [row["label"]]},
                                features=datasets.Features({
                                    "text": datasets.Value("string"),
                                    "label": datasets.Sequence(feature)}))
        elif multi and not config.allow_no_label:
            _refuse_texts_without_labels(loaded, source)
        return _rename_hub_labels(loaded, config)
    return _encode_hub_labels(loaded, config)


def _refuse_texts_without_labels(loaded: Any, source: str) -> None:
    for split, dataset in loaded.items():
        empty = next((i for i, labels in enumerate(dataset["label"]) if not labels), None)
        if empty is not None:
            raise DataError(f"{source}: {split} example {empty + 1} carries no label. If texts "
                            "without labels are expected, allow them (allow_no_label, "
                            "--allow-no-label)")


def _rename_hub_labels(loaded: Any, config: DataConfig) -> Any:
    from datasets import ClassLabel, Sequence

    if config.labels is None:
        return loaded
    feature = loaded["train"].features["label"]
    current = getattr(feature, "feature", feature).names
    if len(current) != len(config.labels):
        raise DataError(f"labels has {len(config.labels)} names, the dataset {len(current)}. "
                        f"Received: labels={list(config.labels)}")
    renamed = ClassLabel(names=list(config.labels))
    return loaded.cast_column("label", Sequence(renamed) if isinstance(feature, Sequence)
                              else renamed)


def _encode_hub_labels(loaded: Any, config: DataConfig) -> Any:
    rows = {split: [listed_row(str(t), list(l), f"{split} split", i + 1)
                    if isinstance(l, (list, tuple)) else Row(str(t), str(l), f"{split} split", i + 1)
                    for i, (t, l) in enumerate(zip(ds["text"], ds["label"]))]
            for split, ds in loaded.items()}
    rows = _apply_problem_type(rows, config)
    names = list(config.labels) if config.labels is not None else None
    return _build_dataset_dict(rows, _resolve_label_names(rows, names))


# endregion
