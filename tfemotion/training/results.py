"""What a fine-tuning run leaves behind: the best epoch, the saved run folder, a hint.

``save_run`` writes a trained model's run folder (``tfemotion.runfolder``): the model and its
tokenizer, the run record (with its temperatures and a multi-label task's decision thresholds,
fitted here on the validation split: ``tfemotion.training.calibrate``), and the evaluation of the
validation and test splits. ``best_epoch`` and
``training_advice`` read the per-epoch rows by the metric the task is judged by.

Example:
    >>> rows = [{"epoch": 1, "val_f1_weighted": 0.60}, {"epoch": 2, "val_f1_weighted": 0.73}]
    >>> best_epoch(rows, task)
    2
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from tfemotion.evaluation.evaluate import evaluate_split
from tfemotion.evaluation.metrics import headline
from tfemotion.files import write_json
from tfemotion.runfolder import RunFolder, RunRecord, library_versions
from tfemotion.task import Task
from tfemotion.training.calibrate import calibrated_record

logger = logging.getLogger(__name__)

# The per-epoch figures metrics.json keeps (a multi-label task adds val_f1_micro).
EPOCH_KEYS = ("epoch", "loss", "val_loss", "val_accuracy", "val_f1_weighted")
# A last-epoch gain in the validation F1 at least this large means training stopped early.
STEEP_F1_GAIN = 0.02


def save_run(run_dir: str | Path, model: Any, tokenizer: Any, encoded: Any, record: RunRecord,
             rows: Sequence[dict[str, Any]], best: Optional[int] = None) -> dict[str, Any]:
    """Write a trained model's run folder: model, tokenizer, record, metrics, evaluation.

    The validation split (and the test split, when ``encoded`` has one) is evaluated with the
    model as it is: its metrics, confusion matrix, per-class report and error tables go to the
    run folder (see ``tfemotion.runfolder``), so ``tfemotion evaluate`` and ``tfemotion export``
    work on it. A multi-label run first gets its decision thresholds, tuned on validation.

    Args:
        run_dir: str or Path. The run folder.
        model: the trained sequence classifier.
        tokenizer: its tokenizer.
        encoded: DatasetDict. The tokenized splits (``validation``, optionally ``test``) with
            the targets of ``record.task`` (``tfemotion.data.with_targets``).
        record: RunRecord. What the run was (settings, task, max length, schedule).
        rows: sequence of dict. One row per epoch (``ValidationMetrics.rows``).
        best: int, optional. The epoch whose weights the model holds (default: the last).

    Returns:
        The metrics written to ``RUN/metrics.json`` (see ``tfemotion.training.train``).

    Example:
        >>> import json
        >>> metrics = json.loads(RunFolder(run_dir).metrics.read_text())  # what save_run wrote
        >>> sorted(metrics["validation"])
        ['accuracy', 'f1_macro', 'f1_weighted']
    """
    from tfemotion.evaluation.outputs import predict_logits

    run = RunFolder(run_dir)
    if not rows:
        raise ValueError("save_run needs at least one trained epoch. Received: rows=[]")
    if not record.versions:  # a record built by hand (the Keras steps one by one)
        record = dataclasses.replace(record, versions=library_versions())
    model.save_pretrained(str(run.model))
    tokenizer.save_pretrained(str(run.model))
    record.save(run)
    task, config = record.task, record.finetune
    # The validation split's logits: the temperatures (and a multi-label run's thresholds) are
    # fitted on them, then its evaluation reuses them.
    logits = predict_logits(model, encoded["validation"], tokenizer, config.batch_size)
    record, fit = calibrated_record(record, logits, np.asarray(encoded["validation"]["label"]),
                                    record.validation or "the validation split")
    record.save(run)
    results = {}
    for split in ("validation", "test"):
        if split in encoded:
            out = run.root if split == "validation" else run.evaluation(split)
            results[split] = evaluate_split(
                model, tokenizer, encoded[split], task, out,
                batch_size=config.batch_size, error_examples=config.error_examples,
                title=f"Normalized confusion matrix ({split})", thresholds=record.thresholds,
                temperatures=record.temperatures,
                logits=logits if split == "validation" else None)
    seconds = float(sum(r["train_seconds"] for r in rows))
    epoch_keys = EPOCH_KEYS + (("val_f1_micro",) if task.multi_label else ())
    metrics = {
        "epochs": [{k: row[k] for k in epoch_keys} for row in rows],
        "best_epoch": int(best or rows[-1]["epoch"]),
        **{split: headline(result, task) for split, result in results.items()},
        "train_seconds": seconds,
        "train_examples_per_second": float(sum(r["train_examples"] for r in rows)) / seconds
        if seconds else 0.0,
        "schedule": record.schedule.to_dict(),
        "advice": training_advice(rows, task),
        "calibration": calibration_summary(record, fit, results),
    }
    if task.multi_label:
        metrics.update(thresholds=dict(zip(task.label_names, record.thresholds)),
                       global_threshold=record.global_threshold)
    write_json(metrics, run.metrics)
    if metrics["advice"]:
        logger.warning("%s", metrics["advice"])
    return metrics


def history_table(rows: Sequence[dict[str, Any]]) -> str:
    """The per-epoch figures as the book's table (Epoch, losses, accuracy, F1).

    Example:
        >>> print(history_table([{"epoch": 1, "loss": 0.84, "val_loss": 0.33,
        ...                       "val_accuracy": 0.90, "val_f1_weighted": 0.899}]))
        Epoch  Training Loss  Validation Loss  Accuracy        F1
            1       0.840000         0.330000  0.900000  0.899000
    """
    lines = [f"{'Epoch':>5}  {'Training Loss':>13}  {'Validation Loss':>15}  {'Accuracy':>8}  "
             f"{'F1':>8}"]
    for row in rows:
        lines.append(f"{row['epoch']:>5}  {row['loss']:>13.6f}  {row['val_loss']:>15.6f}  "
                     f"{row['val_accuracy']:>8.6f}  {row['val_f1_weighted']:>8.6f}")
    return "\n".join(lines)


def best_epoch(rows: Sequence[dict[str, Any]], task: Task) -> int:
    """The epoch (1-based) with the best validation figure of ``task.selection_metric``
    (weighted F1; micro F1 for a multi-label task); the earliest on ties.

    Example:
        >>> best_epoch([{"epoch": 1, "val_f1_weighted": 0.8}, {"epoch": 2, "val_f1_weighted": 0.9},
        ...             {"epoch": 3, "val_f1_weighted": 0.9}], task)
        2
    """
    if not rows:
        raise ValueError("no completed epoch to choose from. Received: rows=[]")
    key = f"val_{task.selection_metric}"
    return int(max(rows, key=lambda r: (r[key], -r["epoch"]))["epoch"])


def training_advice(rows: Sequence[dict[str, Any]], task: Task) -> Optional[str]:
    """One line when the validation F1 was still rising steeply in the last epoch, else None.

    Steeply: the last epoch gained at least ``STEEP_F1_GAIN`` (2 points) of the figure the task
    is judged by (weighted F1; micro F1 for a multi-label task).

    Example:
        >>> training_advice([{"epoch": 1, "val_f1_weighted": 0.60},
        ...                  {"epoch": 2, "val_f1_weighted": 0.73}], task)
        'Validation F1 was still rising steeply in the last epoch (0.6000 -> 0.7300): more epochs or a higher learning rate would likely help.'
        >>> training_advice([{"epoch": 1, "val_f1_weighted": 0.92},
        ...                  {"epoch": 2, "val_f1_weighted": 0.93}], task) is None
        True
    """
    if len(rows) < 2:
        return None
    key = f"val_{task.selection_metric}"
    before, last = rows[-2][key], rows[-1][key]
    if last - before < STEEP_F1_GAIN:
        return None
    return (f"Validation F1 was still rising steeply in the last epoch ({before:.4f} -> "
            f"{last:.4f}): more epochs or a higher learning rate would likely help.")


def calibration_summary(record: RunRecord, fit: Optional[dict[str, Any]],
                        results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What ``metrics.json`` says of calibration: the temperatures, where they were fitted, how
    long it took, and each evaluated split's figures before and after.

    Example:
        >>> from tfemotion.config import DataConfig, FinetuneConfig, choose_schedule
        >>> record = RunRecord(DataConfig(), FinetuneConfig(calibrate=False), task, 64,
        ...                    choose_schedule(FinetuneConfig()), calibration="off")
        >>> summary = calibration_summary(record, None, {})  # a run with --no-calibrate
        >>> summary["temperatures"], summary["fitted_on"].startswith("off")
        (None, True)
    """
    temperatures = record.temperatures
    if temperatures is not None and len(temperatures) == record.task.num_labels > 1:
        shown: Any = dict(zip(record.task.label_names, temperatures))
    else:
        shown = None if temperatures is None else temperatures[0]
    return {"temperatures": shown, "fitted_on": record.calibration,
            "fit_seconds": fit["seconds"] if fit else None,
            **{split: {k: v for k, v in result["calibration"].items()
                       if k in ("before", "after")}
               for split, result in results.items() if "calibration" in result}}
