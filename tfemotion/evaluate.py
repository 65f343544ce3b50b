"""Evaluation: metrics, confusion matrix, per-class report, error analysis.

Shared by the feature-extraction baseline and the fine-tuned classifier, so both report
the same numbers the same way. ``evaluate_run`` re-evaluates a saved run folder on one split
(``tfemotion evaluate``) and writes its files to ``RUN/evaluation/SPLIT/``.

Example:
    >>> classification_metrics([0, 1, 1, 2], [0, 1, 2, 2])["accuracy"]
    0.75
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from tfemotion.multilabel import (DEFAULT_THRESHOLD, is_multi_hot, multilabel_metrics,
                                  per_example_bce, per_label_report, predict_labels, sigmoid)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    """Accuracy, weighted F1 and macro F1, as plain floats.

    Args:
        y_true: sequence of int. Gold label ids.
        y_pred: sequence of int. Predicted label ids.

    Returns:
        ``{"accuracy": a, "f1_weighted": f, "f1_macro": m}``.

    Raises:
        ValueError: the two sequences differ in length or are empty.

    Example:
        >>> classification_metrics([0, 0, 1], [0, 0, 1])
        {'accuracy': 1.0, 'f1_weighted': 1.0, 'f1_macro': 1.0}
    """
    from sklearn.metrics import accuracy_score, f1_score

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise ValueError(
            "y_true and y_pred must be non-empty and of equal length. "
            f"Received: len(y_true)={len(y_true)}, len(y_pred)={len(y_pred)}"
        )
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_weighted": float(f1_score(y_true, y_pred, average="weighted", zero_division=0)),
        "f1_macro": float(f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def plot_confusion_matrix(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    label_names: Sequence[str],
    path: str | Path,
    title: str = "Normalized confusion matrix",
) -> Path:
    """Save the row-normalized confusion matrix as a PNG, as in the book.

    Args:
        y_true: sequence of int. Gold label ids.
        y_pred: sequence of int. Predicted label ids.
        label_names: sequence of str. Name of each id, in id order.
        path: str or Path. Where to write the PNG (folders are created).
        title: str. Figure title.

    Returns:
        The path written.

    Example:
        >>> import tempfile, os
        >>> out = plot_confusion_matrix([0, 1], [0, 0], ["a", "b"], os.path.join(tempfile.mkdtemp(), "cm.png"))
        >>> out.stat().st_size > 0
        True
    """
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    from tfemotion.files import new_figure, rotate_x_labels, save_figure

    labels = list(range(len(label_names)))
    matrix = confusion_matrix(y_true, y_pred, labels=labels, normalize="true")
    size = max(5.0, 0.8 * len(label_names) + 2)
    fig, ax = new_figure(size, size)
    ConfusionMatrixDisplay(matrix, display_labels=list(label_names)).plot(
        cmap="Blues", values_format=".2f", ax=ax, colorbar=False
    )
    ax.set_title(title)
    rotate_x_labels(ax)
    return save_figure(fig, path)


# region Per-class report


def per_class_report(
    y_true: Sequence[int], y_pred: Sequence[int], label_names: Sequence[str]
) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of each class, in id order.

    Args:
        y_true: sequence of int. Gold label ids.
        y_pred: sequence of int. Predicted label ids.
        label_names: sequence of str. Name of each id, in id order.

    Returns:
        ``{name: {"precision": p, "recall": r, "f1": f, "support": n}}``.

    Example:
        >>> per_class_report([0, 1, 1], [0, 1, 0], ["a", "b"])["b"]
        {'precision': 1.0, 'recall': 0.5, 'f1': 0.6666666666666666, 'support': 2}
    """
    from sklearn.metrics import precision_recall_fscore_support

    labels = list(range(len(label_names)))
    precision, recall, f1, support = precision_recall_fscore_support(
        np.asarray(y_true), np.asarray(y_pred), labels=labels, zero_division=0
    )
    return {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
               "support": int(support[i])}
        for i, name in enumerate(label_names)
    }


def format_report(report: dict[str, dict[str, float]]) -> str:
    """The per-class report as a fixed-width text table (like scikit-learn's).

    Example:
        >>> row = {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 2}
        >>> print(format_report({"joy": row}))
        class  precision  recall      f1  support
        joy       1.0000  0.5000  0.6670        2
    """
    width = max([len("class")] + [len(name) for name in report]) + 2
    lines = [f"{'class':<{width}}{'precision':>9}{'recall':>8}{'f1':>8}{'support':>9}"]
    for name, row in report.items():
        lines.append(f"{name:<{width}}{row['precision']:>9.4f}{row['recall']:>8.4f}"
                     f"{row['f1']:>8.4f}{row['support']:>9d}")
    return "\n".join(lines)


# endregion
# region Predictions and per-example losses


def predict_logits(model: Any, dataset: Any, tokenizer: Any, batch_size: int = 64) -> np.ndarray:
    """Logits of a tokenized split, in the split's order, predicted in length-sorted batches.

    Texts are sorted by length and each batch is padded to its own longest text (dynamic
    padding), so short texts do not pay for long ones; the rows are put back in order after.

    Args:
        model: a transformers TF sequence classifier.
        dataset: datasets.Dataset with ``input_ids`` and ``attention_mask`` (not padded).
        tokenizer: the model's tokenizer (for the padding id).
        batch_size: int. Texts per forward pass.

    Returns:
        float32 array ``[len(dataset), num_labels]``.

    Raises:
        ValueError: the dataset is not tokenized, or is empty.

    Example:
        >>> logits = predict_logits(model, encoded["validation"], tokenizer)  # doctest: +SKIP
    """
    from tfemotion.inputs import sorted_tf_dataset

    _check_tokenized(dataset)
    order = np.argsort([len(ids) for ids in dataset["input_ids"]], kind="stable")
    tf_dataset = sorted_tf_dataset(dataset.select(order), tokenizer, batch_size)
    output = model.predict(tf_dataset, verbose=0)
    logits = np.asarray(output["logits"] if isinstance(output, dict) else output.logits)
    restored = np.empty_like(logits, dtype=np.float32)
    restored[order] = logits
    return restored


def per_example_loss(logits: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Cross-entropy of each example (what ``SparseCategoricalCrossentropy(from_logits=True)``
    averages), computed stably in float64.

    Example:
        >>> per_example_loss(np.array([[0.0, 0.0]]), [1]).round(4).tolist()
        [0.6931]
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(
            "logits must be [examples, classes] with one label per example. "
            f"Received: logits.shape={logits.shape}, len(labels)={len(labels)}"
        )
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return log_norm - logits[np.arange(len(labels)), labels]


def loss_and_predictions(model: Any, dataset: Any, tokenizer: Any, batch_size: int = 64) -> dict:
    """Per-example loss and predicted label of a tokenized, labelled split, computed in batches.

    This is the book's error analysis (``forward_pass_with_label``) for a Keras model.

    Args:
        model: a transformers TF sequence classifier.
        dataset: datasets.Dataset with ``input_ids``, ``attention_mask`` and ``label``.
        tokenizer: the model's tokenizer.
        batch_size: int. Texts per forward pass.

    Returns:
        ``{"logits": [n, k], "loss": [n], "predicted_label": [n]}`` as numpy arrays. A
        multi-label split (multi-hot ``label``) gets ``"probabilities": [n, k]`` and
        ``"predicted_labels"`` (boolean ``[n, k]``, probability >= 0.5) instead of
        ``predicted_label``, and binary cross-entropy as the loss.

    Example:
        >>> out = loss_and_predictions(model, encoded["validation"], tokenizer)  # doctest: +SKIP
        >>> out["loss"].shape  # doctest: +SKIP
        (2000,)
    """
    if "label" not in dataset.column_names:
        raise ValueError(
            f"dataset needs a 'label' column. Received: columns={dataset.column_names}")
    logits = predict_logits(model, dataset, tokenizer, batch_size)
    if is_multi_hot(dataset):
        probabilities = sigmoid(logits)
        return {"logits": logits, "probabilities": probabilities,
                "loss": per_example_bce(logits, np.asarray(dataset["label"])),
                "predicted_labels": predict_labels(probabilities, DEFAULT_THRESHOLD)}
    return {"logits": logits, "loss": per_example_loss(logits, dataset["label"]),
            "predicted_label": logits.argmax(axis=1)}


def _check_tokenized(dataset: Any) -> None:
    missing = [c for c in ("input_ids", "attention_mask") if c not in dataset.column_names]
    if missing or len(dataset) == 0:
        raise ValueError(
            "dataset must be a non-empty tokenized split (see tfemotion.data.tokenize). "
            f"Received: columns={dataset.column_names}, rows={len(dataset)}"
        )


# endregion
# region Error analysis


def error_tables(
    dataset: Any,
    losses: np.ndarray,
    predictions: np.ndarray,
    label_names: Sequence[str],
    n: int = 10,
) -> tuple[Any, Any]:
    """The ``n`` highest- and lowest-loss examples with label names, as in the book.

    Args:
        dataset: datasets.Dataset with ``text`` and ``label``.
        losses: array of float. Per-example loss (same order as ``dataset``).
        predictions: array of int. Predicted label ids.
        label_names: sequence of str. Name of each id.
        n: int. Rows in each table.

    Returns:
        ``(highest, lowest)``: pandas DataFrames with columns ``text``, ``label``,
        ``predicted_label``, ``loss``, sorted by loss (descending, then ascending).

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]})
        >>> high, low = error_tables(ds, np.array([0.1, 2.0]), np.array([0, 0]), ["x", "y"], n=1)
        >>> high.to_dict("records")
        [{'text': 'b', 'label': 'y', 'predicted_label': 'x', 'loss': 2.0}]
    """
    import pandas as pd

    if n <= 0:
        raise ValueError(f"n must be a positive number of rows. Received: n={n!r}")
    names = np.asarray(list(label_names), dtype=object)
    frame = pd.DataFrame({
        "text": dataset["text"],
        "label": names[np.asarray(dataset["label"])],
        "predicted_label": names[np.asarray(predictions)],
        "loss": np.asarray(losses, dtype=np.float64),
    })
    ordered = frame.sort_values("loss", ascending=False, kind="stable")
    highest = ordered.head(n).reset_index(drop=True)
    lowest = frame.sort_values("loss", ascending=True, kind="stable").head(n).reset_index(drop=True)
    return highest, lowest


def write_table(frame: Any, path: str | Path) -> dict[str, Path]:
    """Write a DataFrame as CSV and as a Markdown table beside it (same stem, ``.md``).

    Example:
        >>> import pandas as pd, tempfile, os
        >>> files = write_table(pd.DataFrame({"a": [1]}), os.path.join(tempfile.mkdtemp(), "t.csv"))
        >>> files["md"].read_text().splitlines()[0]
        '| a |'
    """
    path = Path(path).with_suffix(".csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    markdown = path.with_suffix(".md")
    markdown.write_text(markdown_table(frame), encoding="utf-8")
    return {"csv": path, "md": markdown}


def markdown_table(frame: Any) -> str:
    """A DataFrame as a GitHub Markdown table (floats with 4 decimals, ``|`` escaped).

    Example:
        >>> import pandas as pd
        >>> markdown_table(pd.DataFrame({"text": ["a|b"], "loss": [0.5]})).splitlines()
        ['| text | loss |', '| --- | ---: |', '| a\\\\|b | 0.5000 |']
    """

    def cell(value: Any) -> str:
        if isinstance(value, (float, np.floating)):
            return f"{value:.4f}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    from pandas.api.types import is_numeric_dtype

    numeric = [is_numeric_dtype(dtype) for dtype in frame.dtypes]
    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |",
             "| " + " | ".join("---:" if n else "---" for n in numeric) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |"
              for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


# endregion
# region Evaluating a split and a run

# The files evaluate_split writes to its output folder.
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
LABEL_CONFUSION_FILE = "label_confusion.png"  # multi-label: per-label confusion counts
REPORT_FILE = "classification_report.csv"
HIGHEST_LOSS_FILE = "errors_highest_loss.csv"
LOWEST_LOSS_FILE = "errors_lowest_loss.csv"
METRICS_FILE = "metrics.json"


def evaluate_split(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    label_names: Sequence[str],
    out_dir: Optional[str | Path] = None,
    *,
    batch_size: int = 64,
    error_examples: int = 10,
    title: Optional[str] = None,
    thresholds: Optional[Sequence[float]] = None,
) -> dict[str, Any]:
    """Metrics, per-class report and, with ``out_dir``, the confusion matrix and error tables.

    A multi-label split (multi-hot ``label``, see ``tfemotion.multilabel``) gets micro, macro
    and weighted F1, subset accuracy and Hamming loss at ``thresholds`` (default 0.5 for every
    label), the same figures at 0.5 under ``at_threshold_0.5``, a per-label report with
    confusion counts, ``label_confusion.png`` instead of the confusion matrix, and error tables
    by binary cross-entropy.

    Args:
        model: a transformers TF sequence classifier.
        tokenizer: its tokenizer.
        dataset: datasets.Dataset, tokenized, with ``text`` and ``label``.
        label_names: sequence of str. Name of each id.
        out_dir: str or Path, optional. Where to write ``confusion_matrix.png``,
            ``classification_report.csv/.md``, ``errors_highest_loss.csv/.md`` and
            ``errors_lowest_loss.csv/.md``; nothing is written when None.
        batch_size: int. Texts per forward pass.
        error_examples: int. Rows of each error table.
        title: str, optional. Confusion matrix title.
        thresholds: sequence of float, optional. Multi-label: each label's decision threshold.

    Returns:
        ``{"accuracy", "f1_weighted", "f1_macro", "loss", "examples", "per_class", "report",
        "files"}``; ``report`` is the per-class table as text, ``files`` maps names to paths.

    Example:
        >>> result = evaluate_split(model, tok, encoded["test"], names, "out")  # doctest: +SKIP
    """
    outputs = loss_and_predictions(model, dataset, tokenizer, batch_size)
    multi_label = "predicted_labels" in outputs
    if multi_label:
        targets = np.asarray(dataset["label"])
        used = list(thresholds) if thresholds is not None else [DEFAULT_THRESHOLD] * len(
            label_names)
        predicted = predict_labels(outputs["probabilities"], used)
        report = per_label_report(targets, predicted, label_names)
        metrics = {**multilabel_metrics(targets, predicted),
                   "at_threshold_0.5": multilabel_metrics(targets, outputs["predicted_labels"]),
                   "thresholds": dict(zip(label_names, used))}
    else:
        targets, predicted = np.asarray(dataset["label"]), outputs["predicted_label"]
        report = per_class_report(targets, predicted, label_names)
        metrics = classification_metrics(targets, predicted)
    result: dict[str, Any] = {
        **metrics,
        "loss": float(outputs["loss"].mean()),
        "examples": int(len(targets)),
        "per_class": report,
        "report": format_report(report),
        "files": {},
    }
    if out_dir is None:
        return result
    out = Path(out_dir)
    if multi_label:
        files: dict[str, Any] = {"label_confusion": plot_label_confusion(
            report, out / LABEL_CONFUSION_FILE)}
        highest, lowest = multi_label_error_tables(dataset, outputs["loss"], predicted,
                                                   label_names, error_examples)
    else:
        files = {"confusion_matrix": plot_confusion_matrix(
            targets, predicted, label_names, out / CONFUSION_MATRIX_FILE,
            title=title or "Normalized confusion matrix")}
        highest, lowest = error_tables(dataset, outputs["loss"], predicted, label_names,
                                       error_examples)
    for prefix, frame, name in (("report", _report_frame(report), REPORT_FILE),
                                ("highest_loss", highest, HIGHEST_LOSS_FILE),
                                ("lowest_loss", lowest, LOWEST_LOSS_FILE)):
        files.update({f"{prefix}_{k}": v for k, v in write_table(frame, out / name).items()})
    result["files"] = {name: str(path) for name, path in files.items()}
    return result


def summary_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of an ``evaluate_split`` result (what ``metrics.json`` keeps).

    Example:
        >>> summary_metrics({"accuracy": 0.9, "f1_weighted": 0.89, "f1_macro": 0.85, "loss": 0.3})
        {'accuracy': 0.9, 'f1_weighted': 0.89, 'f1_macro': 0.85}
    """
    keys = MULTI_LABEL_KEYS + ("at_threshold_0.5",) if "f1_micro" in result else SINGLE_LABEL_KEYS
    return {k: result[k] for k in keys}


SINGLE_LABEL_KEYS = ("accuracy", "f1_weighted", "f1_macro")
MULTI_LABEL_KEYS = ("f1_micro", "f1_macro", "f1_weighted", "subset_accuracy", "hamming_loss")


def plot_label_confusion(report: dict[str, dict[str, float]], path: str | Path) -> Path:
    """Per label: texts rightly given it, wrongly given it and wrongly denied it (multi-label).

    Example:
        >>> plot_label_confusion(per_label_report(y, p, names), "out/labels.png")  # doctest: +SKIP
    """
    from tfemotion.files import new_figure, save_figure

    names = list(report)
    rows = np.arange(len(names))
    fig, ax = new_figure(8, 0.5 * len(names) + 1.8)
    for offset, key, label, color in ((-0.27, "tp", "right (true positive)", "C2"),
                                      (0.0, "fp", "given wrongly (false positive)", "C3"),
                                      (0.27, "fn", "missed (false negative)", "C1")):
        ax.barh(rows + offset, [report[n][key] for n in names], height=0.26, label=label,
                color=color)
    ax.set_yticks(rows, names)
    ax.invert_yaxis()
    ax.set_xlabel("texts")
    ax.set_title("Label decisions")
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def multi_label_error_tables(dataset: Any, losses: np.ndarray, predicted: np.ndarray,
                             label_names: Sequence[str], n: int = 10) -> tuple[Any, Any]:
    """The ``n`` highest- and lowest-loss texts, gold and predicted labels joined by ", ".

    Example:
        >>> from datasets import Dataset
        >>> ds = Dataset.from_dict({"text": ["a", "b"], "label": [[1.0, 0.0], [1.0, 1.0]]})
        >>> high, _ = multi_label_error_tables(ds, np.array([0.1, 2.0]),
        ...                                    np.array([[1, 0], [0, 1]]), ["x", "y"], n=1)
        >>> high.to_dict("records")
        [{'text': 'b', 'labels': 'x, y', 'predicted_labels': 'y', 'loss': 2.0}]
    """
    import pandas as pd

    if n <= 0:
        raise ValueError(f"n must be a positive number of rows. Received: n={n!r}")

    def joined(matrix: np.ndarray) -> list[str]:
        return [", ".join(name for name, on in zip(label_names, row) if on) for row in matrix]

    frame = pd.DataFrame({"text": dataset["text"],
                          "labels": joined(np.asarray(dataset["label"]) > 0.5),
                          "predicted_labels": joined(np.asarray(predicted).astype(bool)),
                          "loss": np.asarray(losses, dtype=np.float64)})
    highest = frame.sort_values("loss", ascending=False, kind="stable").head(n)
    lowest = frame.sort_values("loss", ascending=True, kind="stable").head(n)
    return highest.reset_index(drop=True), lowest.reset_index(drop=True)


def evaluate_run(
    run_dir: str | Path,
    split: str = "validation",
    *,
    dataset_dict: Any = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Evaluate a run folder's saved model on one split (``tfemotion evaluate``).

    Reads the run record (data settings, label names, max length) and the saved model,
    tokenizes the split the way training did, and writes ``metrics.json``, the confusion
    matrix, the per-class report and the error tables to ``RUN/evaluation/SPLIT/``.

    Args:
        run_dir: str or Path. A run folder written by ``tfemotion.finetune.train``, or the
            ``OUT`` folder of ``tfemotion run`` (which holds it as ``OUT/run``).
        split: str. ``"validation"`` or ``"test"`` (or ``"train"``).
        dataset_dict: DatasetDict, optional. Already loaded splits; default: load them again
            from the run's data settings.
        batch_size: int. Texts per forward pass.

    Returns:
        ``{"split", "accuracy", "f1_weighted", "f1_macro", "loss", "examples", "per_class",
        "report", "files"}``; a multi-label run has ``f1_micro``, ``f1_macro``,
        ``f1_weighted``, ``subset_accuracy``, ``hamming_loss``, ``at_threshold_0.5`` and
        ``thresholds`` instead of the first three.

    Raises:
        FileNotFoundError: the folder is not a finished run.
        ValueError: the split is missing, or the data's labels differ from the run's.

    Example:
        >>> evaluate_run("runs/emotion", "test")["f1_weighted"]  # doctest: +SKIP
        0.93
    """
    from transformers import TFAutoModelForSequenceClassification

    from tfemotion.checkpoints import load_tf_model, load_tokenizer
    from tfemotion.config import SPLITS
    from tfemotion.data import label_names as dataset_label_names
    from tfemotion.data import load_splits, tokenize
    from tfemotion.files import write_json
    from tfemotion.runfolder import RunRecord, check_labels, find_run

    run = find_run(run_dir)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split!r}")
    record = RunRecord.load(run)
    if dataset_dict is None:
        dataset_dict = load_splits(record.data)
    if split not in dataset_dict:
        raise ValueError(f"the data has no {split!r} split (it has {sorted(dataset_dict)}). "
                         f"Received: split={split!r}")
    check_labels(record, dataset_label_names(dataset_dict))
    from tfemotion.multilabel import is_multi_label

    if is_multi_label(dataset_dict) != record.multi_label:
        raise ValueError(
            f"the run is {record.problem_type} but the data loaded as "
            f"{'multi_label' if is_multi_label(dataset_dict) else 'single_label'}; load it the "
            f"way the run did (problem_type={record.data.problem_type!r}). "
            f"Received: run_dir={str(run.root)!r}")
    tokenizer = load_tokenizer(str(run.model))
    model = load_tf_model(TFAutoModelForSequenceClassification, str(run.model))
    encoded = tokenize(dataset_dict[split], tokenizer, record.max_length)
    if record.multi_label:
        from tfemotion.multilabel import with_multi_hot_labels

        encoded = with_multi_hot_labels(encoded, len(record.label_names))
    out = run.evaluation(split)
    result = evaluate_split(
        model, tokenizer, encoded, record.label_names, out, batch_size=batch_size,
        error_examples=record.finetune.error_examples,
        title=f"Normalized confusion matrix ({split})", thresholds=record.thresholds,
    )
    result = {"split": split, **result}
    metrics_path = write_json({k: v for k, v in result.items() if k not in ("report", "files")},
                              out / METRICS_FILE)
    result["files"]["metrics"] = str(metrics_path)
    return result


def _report_frame(report: dict[str, dict[str, float]]) -> Any:
    import pandas as pd

    return pd.DataFrame([{"class": name, **row} for name, row in report.items()])


# endregion
