"""After training: temperatures fitted on held-out logits, recorded in the run.

Every recipe that ends with logits calls ``calibrated_record`` on the validation split's logits
(the split of the data, or the share fine-tuning held out of the training split when the data
has none): it fits the temperatures of ``tfemotion.evaluation.calibration`` (one for a
single-label model, one per label for a multi-label one), and a multi-label run's decision
thresholds are then tuned on the calibrated probabilities, since those are the probabilities the
export, ``predict`` and evaluation answer with. ``FinetuneConfig(calibrate=False)``
(``--no-calibrate``) leaves the temperatures out: the run answers with its raw probabilities,
as runs written before calibration do (they read as ``T = 1``).

``calibrate_run`` (``tfemotion calibrate RUN``) fits them again on an existing run.

Example:
    >>> from tfemotion.config import DataConfig, FinetuneConfig, choose_schedule
    >>> record = RunRecord(DataConfig(), FinetuneConfig(), Task(("a", "b")), 64,
    ...                    choose_schedule(FinetuneConfig()))
    >>> logits = np.array([[3.0, 0.0], [3.0, 0.0], [0.0, 3.0]])  # one confident mistake
    >>> record, fit = calibrated_record(record, logits, [0, 1, 1], "3 held-out texts")
    >>> record.temperatures[0] > 1, record.calibration
    (True, 'temperature fitted on 3 held-out texts')
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfemotion.runfolder import RunRecord
from tfemotion.task import Task

logger = logging.getLogger(__name__)

# What the record says when calibration was turned off.
CALIBRATION_OFF = "off (calibrate=False): raw probabilities, T = 1"


def calibrated_record(record: RunRecord, logits: np.ndarray, targets: Any, where: str,
                      enabled: Optional[bool] = None) -> tuple[RunRecord, Optional[dict]]:
    """The record with its temperatures fitted on held-out logits (and a multi-label run's
    thresholds tuned on the calibrated probabilities), and the fit's report.

    Args:
        record: RunRecord. The run (its task, its settings: ``finetune.calibrate``).
        logits: ``[texts, labels]`` the model's raw logits on held-out texts.
        targets: label ids ``[texts]``, or multi-hot ``[texts, labels]``.
        where: str. Which texts these are, for the record (``calibration``).
        enabled: bool, optional. Fit or not; default: ``record.finetune.calibrate``.

    Returns:
        ``(record, fit)``: ``fit`` is ``fit_calibration``'s report (temperatures, seconds,
        NLL and ECE before and after on these texts), None when calibration is off.
    """
    from tfemotion.evaluation.calibration import fit_calibration

    enabled = record.finetune.calibrate if enabled is None else enabled
    fit = None
    if enabled:
        fit = fit_calibration(logits, targets, record.task)
        label = "temperature" if len(fit["temperatures"]) == 1 else "temperatures (one a label)"
        record = dataclasses.replace(record, temperatures=tuple(fit["temperatures"]),
                                     calibration=f"{label} fitted on {where}")
        logger.info("Calibration: T = %s fitted on %s in %.3f s; ECE %.2f%% -> %.2f%%, NLL "
                    "%.4f -> %.4f", ", ".join(f"{t:g}" for t in fit["temperatures"]), where,
                    fit["seconds"], 100 * fit["before"]["ece"], 100 * fit["after"]["ece"],
                    fit["before"]["nll"], fit["after"]["nll"])
    else:
        record = dataclasses.replace(record, temperatures=None, calibration=CALIBRATION_OFF)
    if record.task.multi_label:
        record = with_tuned_thresholds(record, logits, targets, where)
    return record, fit


def with_tuned_thresholds(record: RunRecord, logits: np.ndarray, targets: Any,
                          where: str) -> RunRecord:
    """A multi-label record with each label's threshold tuned on ``logits``' probabilities at
    the record's temperatures."""
    from tfemotion.evaluation.calibration import probabilities_of
    from tfemotion.evaluation.thresholds import tune_thresholds

    probabilities = probabilities_of(logits, record.task, record.temperatures)
    thresholds, global_threshold = tune_thresholds(probabilities, np.asarray(targets))
    logger.info("Decision thresholds tuned on %s: %s (global %.2f)", where,
                dict(zip(record.task.label_names, thresholds)), global_threshold)
    return dataclasses.replace(record, thresholds=tuple(thresholds),
                               global_threshold=global_threshold)


def calibrate_run(run_dir: str | Path, *, dataset_dict: Any = None, task: Optional[Task] = None,
                  batch_size: int = 64) -> dict[str, Any]:
    """Fit a finished run's temperatures again (``tfemotion calibrate``), and record them.

    The texts are the run's validation split, or for data without one the share fine-tuning
    held out of the training split (the same texts: same share, same seed). A multi-label run's
    thresholds are tuned again on the calibrated probabilities. The evaluation files already in
    the run folder keep the figures of the run's former temperatures: ``tfemotion evaluate``
    writes new ones; an export made before keeps its own.

    Args:
        run_dir: str or Path. A run folder, or the ``OUT`` folder of ``tfemotion run``.
        dataset_dict: DatasetDict, optional. The loaded splits; default: the run's data.
        task: Task, optional. The task of ``dataset_dict``; it must be the run's.
        batch_size: int. Texts per forward pass.

    Returns:
        ``fit_calibration``'s report plus ``run``, ``fitted_on``, ``previous`` (the former
        temperatures, None for T = 1) and ``thresholds`` (multi-label).

    Raises:
        FileNotFoundError: not a finished run.
        ValueError: no held-out texts to fit on (a contrastive run on data without a
            validation split), or the data's task differs from the run's.

    Example:
        >>> calibrate_run("runs/emotion")["fitted_on"]  # doctest: +SKIP
        'the validation split (2000 texts)'
    """
    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.data import load_splits, task_of, tokenize, with_targets
    from tfemotion.evaluation.outputs import predict_logits
    from tfemotion.models import load_run_model
    from tfemotion.runfolder import find_run

    run = find_run(run_dir)
    record = RunRecord.load(run)
    if dataset_dict is None:
        dataset_dict, task = load_splits(record.data), None
    record.task.require_same(task or task_of(dataset_dict), f"the data of {run.root}")
    held, where = _held_out_texts(dataset_dict, record)
    tokenizer = load_tokenizer(str(run.model))
    encoded = with_targets(tokenize(held, tokenizer, record.max_length), record.task)
    logits = predict_logits(load_run_model(run.model), encoded, tokenizer, batch_size)
    previous = record.temperatures
    record, fit = calibrated_record(record, logits, np.asarray(encoded["label"]), where,
                                    enabled=True)
    record.save(run)
    return {**(fit or {}), "run": str(run.root), "fitted_on": where,
            "previous": None if previous is None else list(previous),
            "thresholds": None if record.thresholds is None else list(record.thresholds)}


def _held_out_texts(dataset_dict: Any, record: RunRecord) -> tuple[Any, str]:
    """The split temperatures are fitted on, and what it is."""
    from tfemotion.training.holdout import hold_out

    if "validation" in dataset_dict:
        return dataset_dict["validation"], (f"the validation split "
                                            f"({len(dataset_dict['validation'])} texts)")
    if record.recipe_ran == "contrastive":
        raise ValueError("the run's data has no validation split and the contrastive recipe "
                         "held no texts out: there is nothing to fit a temperature on. Give the "
                         "data a validation split. Received: splits="
                         f"{sorted(dataset_dict)}")
    _, held, note = hold_out(dataset_dict["train"], record.task, record.finetune.holdout_share,
                             record.finetune.seed)
    return held, f"the held-out share ({note})"
