"""Evaluating a classifier on a labelled split, and a saved run on one of its splits.

``evaluate_split`` is what training does at its end and ``evaluate_run`` what ``tfemotion
evaluate`` does with a run folder: the task's metrics, a per-class (or per-label) report, the
confusion matrix (or the per-label decisions), the calibration figures (ECE, NLL, Brier before
and after the run's temperatures) with a reliability diagram, and the highest- and lowest-loss
texts, written as CSV and Markdown beside a ``metrics.json``.

Example:
    >>> result = evaluate_run(run_dir, "test")
    >>> sorted(result["files"])[:3]
    ['confusion_matrix', 'highest_loss_csv', 'highest_loss_md']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from tfemotion.evaluation.calibration import (calibration_report, probabilities_of,
                                              reliability_points)
from tfemotion.evaluation.errors import error_tables, multi_label_error_tables, write_table
from tfemotion.evaluation.metrics import (format_report, per_class_report, per_label_report,
                                          task_metrics)
from tfemotion.evaluation.outputs import loss_and_predictions
from tfemotion.evaluation.plots import (plot_confusion_matrix, plot_label_confusion,
                                        plot_reliability_diagram)
from tfemotion.task import DEFAULT_THRESHOLD, Task

# The files evaluate_split writes to its output folder.
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
LABEL_CONFUSION_FILE = "label_confusion.png"  # multi-label: per-label confusion counts
RELIABILITY_FILE = "reliability_diagram.png"  # calibration, before and after
REPORT_FILE = "classification_report.csv"
HIGHEST_LOSS_FILE = "errors_highest_loss.csv"
LOWEST_LOSS_FILE = "errors_lowest_loss.csv"
METRICS_FILE = "metrics.json"


def evaluate_split(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    task: Task,
    out_dir: Optional[str | Path] = None,
    *,
    batch_size: int = 64,
    error_examples: int = 10,
    title: Optional[str] = None,
    thresholds: Optional[Sequence[float]] = None,
    temperatures: Optional[Sequence[float]] = None,
    logits: Optional[np.ndarray] = None,
) -> dict[str, Any]:
    """Metrics, per-class report and, with ``out_dir``, the confusion matrix and error tables.

    A multi-label task gets micro, macro and weighted F1, subset accuracy and Hamming loss at
    ``thresholds`` (default 0.5 for every label), the same figures at 0.5 under
    ``at_threshold_0.5``, a per-label report with confusion counts, ``label_confusion.png``
    instead of the confusion matrix, and error tables by binary cross-entropy.

    Args:
        model: a transformers TF sequence classifier.
        tokenizer: its tokenizer.
        dataset: datasets.Dataset, tokenized, with ``text`` and the ``label`` targets of ``task``.
        task: Task. The label names and the problem type.
        out_dir: str or Path, optional. Where to write ``confusion_matrix.png``,
            ``classification_report.csv/.md``, ``errors_highest_loss.csv/.md`` and
            ``errors_lowest_loss.csv/.md``; nothing is written when None.
        batch_size: int. Texts per forward pass.
        error_examples: int. Rows of each error table.
        title: str, optional. Confusion matrix title.
        thresholds: sequence of float, optional. Multi-label: each label's decision threshold.
        temperatures: sequence of float, optional. The run's calibration (one, or one per
            label): probabilities and multi-label decisions are those of ``logits / T``.
        logits: ``[n, k]``, optional. The model's logits on ``dataset``, when already computed.

    Returns:
        The task's metrics (``task.headline_metrics``), ``loss``, ``examples``, ``per_class``,
        ``report`` (the per-class table as text), ``calibration`` (ECE, NLL, Brier score and
        mean confidence ``before`` and, with ``temperatures``, ``after`` temperature scaling:
        ``tfemotion.evaluation.calibration.calibration_report``) and ``files`` (names to
        paths; ``reliability_diagram.png`` shows the calibration before and after).

    Example:
        >>> result = evaluate_split(model, tokenizer, encoded["validation"], task)
        >>> result["examples"], 0.0 <= result["accuracy"] <= 1.0
        (60, True)
    """
    names = task.label_names
    outputs = loss_and_predictions(model, dataset, tokenizer, task, batch_size, thresholds,
                                   temperatures, logits)
    targets, predicted = np.asarray(dataset["label"]), outputs["predicted"]
    if task.multi_label:
        used = list(thresholds) if thresholds is not None else [DEFAULT_THRESHOLD] * len(names)
        report = per_label_report(targets, predicted, names)
        metrics = {**task_metrics(task, targets, predicted),
                   "at_threshold_0.5": task_metrics(task, targets,
                                                    outputs["probabilities"] >= DEFAULT_THRESHOLD),
                   "thresholds": dict(zip(names, used))}
    else:
        report = per_class_report(targets, predicted, names)
        metrics = task_metrics(task, targets, predicted)
    result: dict[str, Any] = {
        **metrics,
        "loss": float(outputs["loss"].mean()),
        "examples": int(len(targets)),
        "per_class": report,
        "report": format_report(report),
        "calibration": calibration_report(outputs["logits"], targets, task, temperatures),
        "files": {},
    }
    if out_dir is None:
        return result
    out = Path(out_dir)
    if task.multi_label:
        files: dict[str, Any] = {"label_confusion": plot_label_confusion(
            report, out / LABEL_CONFUSION_FILE)}
        highest, lowest = multi_label_error_tables(dataset, outputs["loss"], predicted, names,
                                                   error_examples)
    else:
        files = {"confusion_matrix": plot_confusion_matrix(
            targets, predicted, names, out / CONFUSION_MATRIX_FILE,
            title=title or "Normalized confusion matrix")}
        highest, lowest = error_tables(dataset, outputs["loss"], predicted, names,
                                       error_examples)
    files["reliability_diagram"] = _reliability_diagram(outputs["logits"], targets, task,
                                                        temperatures, out / RELIABILITY_FILE,
                                                        title)
    for prefix, frame, name in (("report", _report_frame(report), REPORT_FILE),
                                ("highest_loss", highest, HIGHEST_LOSS_FILE),
                                ("lowest_loss", lowest, LOWEST_LOSS_FILE)):
        files.update({f"{prefix}_{k}": v for k, v in write_table(frame, out / name).items()})
    result["files"] = {name: str(path) for name, path in files.items()}
    return result


def evaluate_run(
    run_dir: str | Path,
    split: str = "validation",
    *,
    dataset_dict: Any = None,
    task: Optional[Task] = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Evaluate a run folder's saved model on one split (``tfemotion evaluate``).

    Reads the run record (data settings, task, max length) and the saved model, tokenizes the
    split the way training did, and writes ``metrics.json``, the confusion matrix, the
    reliability diagram, the per-class report and the error tables to
    ``RUN/evaluation/SPLIT/``. Probabilities are those of the run's calibration (its
    temperatures), as its export answers.

    Args:
        run_dir: str or Path. A run folder written by ``tfemotion.training.train``, or the
            ``OUT`` folder of ``tfemotion run`` (which holds it as ``OUT/run``).
        split: str. ``"validation"`` or ``"test"`` (or ``"train"``).
        dataset_dict: DatasetDict, optional. Already loaded splits; default: load them again
            from the run's data settings.
        task: Task, optional. The task of ``dataset_dict`` (default: ``task_of`` it); it must
            be the run's.
        batch_size: int. Texts per forward pass.

    Returns:
        ``{"split", "accuracy", "f1_weighted", "f1_macro", "loss", "examples", "per_class",
        "report", "calibration", "files"}`` (``calibration``: ECE, NLL, Brier before and after
        the run's temperatures; a run without them reads as ``T = 1``); a multi-label run has ``f1_micro``, ``f1_macro``,
        ``f1_weighted``, ``subset_accuracy``, ``hamming_loss``, ``at_threshold_0.5`` and
        ``thresholds`` instead of the first three.

    Raises:
        FileNotFoundError: the folder is not a finished run.
        ValueError: the split is missing, or the data's task (labels, problem type) differs from
            the run's.

    Example:
        >>> evaluate_run(run_dir, "test")["examples"]
        60
    """
    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.config import SPLITS
    from tfemotion.data import load_splits, task_of, tokenize, with_targets
    from tfemotion.models import load_run_model
    from tfemotion.files import write_json
    from tfemotion.runfolder import RunRecord, find_run

    run = find_run(run_dir)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}. Received: split={split!r}")
    record = RunRecord.load(run)
    if dataset_dict is None:
        dataset_dict, task = load_splits(record.data), None
    if split not in dataset_dict:
        raise ValueError(f"the data has no {split!r} split (it has {sorted(dataset_dict)}). "
                         f"Received: split={split!r}")
    record.task.require_same(task or task_of(dataset_dict),
                             f"the data of {run.root} (loaded with problem_type="
                             f"{record.data.problem_type!r})")
    tokenizer = load_tokenizer(str(run.model))
    model = load_run_model(run.model)
    encoded = with_targets(tokenize(dataset_dict[split], tokenizer, record.max_length),
                           record.task)
    out = run.evaluation(split)
    result = evaluate_split(
        model, tokenizer, encoded, record.task, out, batch_size=batch_size,
        error_examples=record.finetune.error_examples,
        title=f"Normalized confusion matrix ({split})", thresholds=record.thresholds,
        temperatures=record.temperatures,
    )
    result = {"split": split, **result}
    metrics_path = write_json({k: v for k, v in result.items() if k not in ("report", "files")},
                              out / METRICS_FILE)
    result["files"]["metrics"] = str(metrics_path)
    return result


def _reliability_diagram(logits: np.ndarray, targets: np.ndarray, task: Task,
                         temperatures: Optional[Sequence[float]], path: Path,
                         title: Optional[str]) -> Path:
    """The reliability diagram of the raw probabilities and, with temperatures, the calibrated
    ones."""
    curves = {"raw (T = 1)": reliability_points(probabilities_of(logits, task), targets, task)}
    if temperatures is not None:
        shown = ", ".join(f"{t:.2f}" for t in temperatures)
        name = f"calibrated (T = {shown})" if len(temperatures) == 1 else "calibrated (T per label)"
        curves[name] = reliability_points(probabilities_of(logits, task, temperatures), targets,
                                          task)
    split = title[title.rfind("("):] if title and title.endswith(")") else ""
    what = "every label's probability" if task.multi_label else "top probability"
    return plot_reliability_diagram(curves, path, f"Reliability diagram {split}".strip(), what)


def _report_frame(report: dict[str, dict[str, float]]) -> Any:
    import pandas as pd

    return pd.DataFrame([{"class": name, **row} for name, row in report.items()])
