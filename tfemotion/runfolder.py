"""The run folder: what fine-tuning writes and evaluation, export and the pipeline read.

One module owns it: ``RunFolder`` names every file and folder in it, and ``RunRecord`` is the
typed record of a run (its settings, its task, resolved maximum length and learning rate,
hardware and versions) that fine-tuning writes to ``RUN/config.json`` and every reader loads.
No other module spells a file name of the run folder or parses ``config.json`` by hand.

Layout::

    RUN/config.json              the RunRecord
    RUN/model/                   save_pretrained of the model and its tokenizer
    RUN/history.csv              one row per epoch (continuous across --resume)
    RUN/metrics.json             per-epoch figures, best epoch, validation/test metrics, speed
    RUN/confusion_matrix.png     validation split at the end of training, with
    RUN/errors_highest_loss.csv  classification_report.csv/.md, errors_lowest_loss.csv (and .md),
                                 reliability_diagram.png (calibration before and after)
    RUN/evaluation/test/         the same files for the test split
    RUN/evaluation/SPLIT/        what `tfemotion evaluate` writes, with the split's metrics.json
    RUN/checkpoints/             epoch-K (model + optimizer after epoch K), state.json; the
                                 contrastive recipe: phase1-step-K (encoder + optimizer)
    RUN/logs/                    TensorBoard

``tfemotion run`` (and ``make run``) puts the run folder at ``OUT/run``; ``find_run`` accepts
either folder.

Example:
    >>> RunFolder("runs/emotion").model
    PosixPath('runs/emotion/model')
    >>> RunFolder("runs/emotion").evaluation("test").name
    'test'
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tfemotion.config import (BOOK_EPOCHS, DataConfig, FinetuneConfig, Schedule,
                              choose_schedule)
from tfemotion.files import write_json
from tfemotion.task import Task

# Where `tfemotion run` puts the run folder inside its output folder.
PIPELINE_RUN_DIR = "run"
RECORD_FORMAT = 1
# Columns of history.csv: one row per epoch (multi-label runs add val_f1_micro).
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_f1_weighted",
                   "learning_rate", "train_seconds", "val_seconds", "train_examples")


@dataclass(frozen=True)
class RunFolder:
    """The paths of one run folder (nothing is read or created by building it)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def record(self) -> Path:
        """``config.json``: the ``RunRecord``."""
        return self.root / "config.json"

    @property
    def model(self) -> Path:
        """``model/``: the fine-tuned model and its tokenizer (``save_pretrained``)."""
        return self.root / "model"

    @property
    def metrics(self) -> Path:
        """``metrics.json``: per-epoch figures, best epoch, validation and test metrics."""
        return self.root / "metrics.json"

    @property
    def history(self) -> Path:
        """``history.csv``: one row per epoch."""
        return self.root / "history.csv"

    @property
    def checkpoints(self) -> Path:
        """``checkpoints/``: model and optimizer after each epoch."""
        return self.root / "checkpoints"

    @property
    def state(self) -> Path:
        """``checkpoints/state.json``: the completed epochs' rows, for ``--resume``."""
        return self.checkpoints / "state.json"

    @property
    def logs(self) -> Path:
        """``logs/``: TensorBoard."""
        return self.root / "logs"

    def checkpoint(self, epoch: int) -> Path:
        """Prefix of the checkpoint written after ``epoch`` (1-based).

        Example:
            >>> RunFolder("r").checkpoint(2).as_posix()
            'r/checkpoints/epoch-2'
        """
        return self.checkpoints / f"epoch-{epoch}"

    def phase1_checkpoint(self, step: int) -> Path:
        """Prefix of the contrastive recipe's checkpoint of the encoder after ``step`` steps.

        Example:
            >>> RunFolder("r").phase1_checkpoint(50).as_posix()
            'r/checkpoints/phase1-step-50'
        """
        return self.checkpoints / f"phase1-step-{step}"

    def evaluation(self, split: str) -> Path:
        """Where ``tfemotion evaluate`` writes a split's files (and training the test split's).

        Training writes the validation split's files to the run folder itself.

        Example:
            >>> RunFolder("r").evaluation("test").as_posix()
            'r/evaluation/test'
        """
        return self.root / "evaluation" / split

    def holds_training(self) -> bool:
        """True when a training run (finished or not) already wrote here."""
        return self.state.exists() or self.metrics.exists() or self.model.exists()

    def is_finished(self) -> bool:
        """True when the record and the saved model are both there."""
        return self.record.is_file() and (self.model / "config.json").is_file()


def find_run(path: str | Path) -> RunFolder:
    """The finished run folder at ``path``: a run folder, or the ``OUT`` folder of ``tfemotion run``.

    Raises:
        FileNotFoundError: neither ``path`` nor ``path/run`` is a finished run folder; the
            message says what was expected.

    Example:
        >>> find_run("no/such/folder")
        Traceback (most recent call last):
        ...
        FileNotFoundError: no/such/folder is not a finished run folder: expected config.json and model/ written by `tfemotion train`, in it or in no/such/folder/run (the OUT folder of `tfemotion run` / `make run`). Received: path='no/such/folder'
    """
    for candidate in (RunFolder(path), RunFolder(Path(path) / PIPELINE_RUN_DIR)):
        if candidate.is_finished():
            return candidate
    run = RunFolder(path)
    raise FileNotFoundError(
        f"{path} is not a finished run folder: expected {run.record.name} and {run.model.name}/ "
        f"written by `tfemotion train`, in it or in {Path(path) / PIPELINE_RUN_DIR} (the OUT "
        f"folder of `tfemotion run` / `make run`). Received: path={str(path)!r}")


@dataclass(frozen=True)
class RunRecord:
    """What a fine-tuning run was: written once by fine-tuning, read by every later stage.

    Attributes:
        data: DataConfig. Where the texts came from (evaluation and export reload them).
        finetune: FinetuneConfig. The settings as given (``None`` = chosen for the checkpoint).
        task: Task. The label names and the problem type the model was trained for.
        max_length: int. The resolved truncation length, in tokens.
        schedule: Schedule. The learning rate and warm-up used, and why.
        strategy: str. The ``tf.distribute`` strategy kind.
        replicas: int. Replicas in sync.
        steps_per_epoch: int. Optimizer steps in one epoch.
        train_examples_per_epoch: int.
        padding_share: float or None. Share of padded tokens in the training batches.
        versions: dict. Python and library versions that trained the run.
        thresholds: tuple of float or None. Multi-label: each label's decision threshold,
            tuned on the validation split.
        global_threshold: float or None. Multi-label: the one threshold that maximised micro F1.
        recipe: str or None. The recipe that ran (``default``, ``book-keras``,
            ``contrastive``); None in records written before ``recipe="auto"``, whose
            ``finetune.recipe`` is the one that ran (``recipe_ran``).
        recipe_reason: str or None. Why that recipe (given, or chosen for the data's size).
        validation: str or None. Where the validation figures come from: the validation split,
            a share held out of the training split, or none (and what was done instead).
        contrastive: dict or None. The contrastive recipe's particulars: pooling, pairs,
            steps, head and its ``C``, label templates added.
        temperatures: tuple of float or None. Calibration: the logits are divided by these
            before softmax / sigmoid (one for a single-label model, one per label for a
            multi-label one), fitted on held-out texts after training; None (records written
            before calibration, or ``calibrate=False``): ``T = 1``, raw probabilities.
        calibration: str or None. Where the temperatures were fitted, or why there are none.

    On disk (``config.json``) the task is the ``label_names`` and ``problem_type`` keys, as every
    record has held them; records written before multi-label data came in have no
    ``problem_type`` and read as single-label.
    """

    data: DataConfig
    finetune: FinetuneConfig
    task: Task
    max_length: int
    schedule: Schedule
    strategy: str = "default"
    replicas: int = 1
    steps_per_epoch: int = 0
    train_examples_per_epoch: int = 0
    padding_share: Optional[float] = None
    versions: dict[str, str] = field(default_factory=dict)
    thresholds: Optional[tuple[float, ...]] = None
    global_threshold: Optional[float] = None
    recipe: Optional[str] = None
    recipe_reason: Optional[str] = None
    validation: Optional[str] = None
    contrastive: Optional[dict[str, Any]] = None
    temperatures: Optional[tuple[float, ...]] = None
    calibration: Optional[str] = None

    @property
    def recipe_ran(self) -> str:
        """The recipe that trained the run (older records: the one their settings name).

        Example:
            >>> RunRecord(DataConfig(), FinetuneConfig(recipe="book-keras"), Task(("a", "b")),
            ...           64, choose_schedule(FinetuneConfig())).recipe_ran
            'book-keras'
        """
        if self.recipe:
            return self.recipe
        return "default" if self.finetune.recipe == "auto" else self.finetune.recipe

    @property
    def label_names(self) -> tuple[str, ...]:
        """The task's label names, in id order."""
        return self.task.label_names

    def to_dict(self) -> dict[str, Any]:
        """The JSON form written to ``config.json``.

        Example:
            >>> from tfemotion.config import choose_schedule
            >>> record = RunRecord(DataConfig(), FinetuneConfig(), Task(("a", "b")), 128,
            ...                    choose_schedule(FinetuneConfig()))
            >>> RunRecord.from_dict(record.to_dict()) == record
            True
        """
        return {
            "format": RECORD_FORMAT,
            "data": self.data.to_dict(),
            "finetune": self.finetune.to_dict(),
            **self.task.to_dict(),
            "max_length": self.max_length,
            "schedule": self.schedule.to_dict(),
            "strategy": self.strategy,
            "replicas": self.replicas,
            "steps_per_epoch": self.steps_per_epoch,
            "train_examples_per_epoch": self.train_examples_per_epoch,
            "padding_share": self.padding_share,
            "versions": dict(self.versions),
            "thresholds": None if self.thresholds is None else list(self.thresholds),
            "global_threshold": self.global_threshold,
            "recipe": self.recipe,
            "recipe_reason": self.recipe_reason,
            "validation": self.validation,
            "contrastive": self.contrastive,
            "temperatures": None if self.temperatures is None else list(self.temperatures),
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "RunRecord":
        """Rebuild a record from ``to_dict``'s output; unknown settings are rejected by name."""
        if int(values.get("format", RECORD_FORMAT)) > RECORD_FORMAT:
            raise ValueError(f"the record was written by a newer tfemotion (format "
                             f"{values['format']}; this one reads {RECORD_FORMAT})")
        finetune = FinetuneConfig.from_dict(values["finetune"])
        if values.get("schedule"):
            # records before the schedule held the epochs: the settings held them
            schedule = Schedule.from_dict({"epochs": finetune.epochs or BOOK_EPOCHS,
                                           **values["schedule"]})
        else:  # written before records had a schedule: the settings held the values used
            schedule = choose_schedule(finetune)
        return cls(
            data=DataConfig.from_dict(values["data"]),
            finetune=finetune,
            task=Task.from_dict(values),
            max_length=int(values["max_length"]),
            schedule=schedule,
            strategy=values.get("strategy", "default"),
            replicas=int(values.get("replicas", 1)),
            steps_per_epoch=int(values.get("steps_per_epoch", 0)),
            train_examples_per_epoch=int(values.get("train_examples_per_epoch", 0)),
            padding_share=values.get("padding_share"),
            versions=dict(values.get("versions") or {}),
            thresholds=None if values.get("thresholds") is None
            else tuple(float(t) for t in values["thresholds"]),
            global_threshold=values.get("global_threshold"),
            recipe=values.get("recipe"),
            recipe_reason=values.get("recipe_reason"),
            validation=values.get("validation"),
            contrastive=values.get("contrastive"),
            temperatures=None if values.get("temperatures") is None
            else tuple(float(t) for t in values["temperatures"]),
            calibration=values.get("calibration"),
        )

    def save(self, run: RunFolder) -> Path:
        """Write the record to ``RUN/config.json`` (atomically)."""
        return write_json(self.to_dict(), run.record)

    @classmethod
    def load(cls, run: RunFolder) -> "RunRecord":
        """Read ``RUN/config.json``.

        Raises:
            FileNotFoundError: no record there.
            ValueError: the file is not a run record (the message names it).
        """
        if not run.record.is_file():
            raise FileNotFoundError(
                f"{run.record} is missing: expected a run folder written by `tfemotion train`. "
                f"Received: run_dir={str(run.root)!r}")
        try:
            return cls.from_dict(json.loads(run.record.read_text(encoding="utf-8")))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{run.record} is not a tfemotion run record: {error}") from error


def write_history(run: RunFolder, rows: list[dict[str, Any]], task: Task) -> None:
    """Write the completed epochs: ``checkpoints/state.json`` (for ``--resume``) and
    ``history.csv`` (multi-label runs add the ``val_f1_micro`` column), each atomically.

    Example:
        >>> import tempfile
        >>> run = RunFolder(tempfile.mkdtemp())
        >>> write_history(run, [{"epoch": 1, "loss": 0.5}], Task(("a", "b")))
        >>> completed_epochs(run)
        [{'epoch': 1, 'loss': 0.5}]
    """
    import csv

    write_json({"rows": rows, "completed_epochs": len(rows)}, run.state)
    temporary = run.history.with_name(f".{run.history.name}.tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        columns = HISTORY_COLUMNS + (("val_f1_micro",) if task.multi_label else ())
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    temporary.replace(run.history)


def completed_epochs(run: RunFolder) -> list[dict[str, Any]]:
    """The rows of the epochs a run completed (``[]`` when none did)."""
    if not run.state.is_file():
        return []
    return list(json.loads(run.state.read_text(encoding="utf-8"))["rows"])


def library_versions() -> dict[str, str]:
    """Python and library versions, as recorded in a run (imports TensorFlow).

    Example:
        >>> sorted(library_versions())
        ['datasets', 'python', 'tensorflow', 'tf_keras', 'tfemotion', 'transformers']
    """
    import datasets
    import tensorflow as tf
    import tf_keras
    import transformers

    import tfemotion

    return {"python": sys.version.split()[0], "tensorflow": tf.__version__,
            "tf_keras": tf_keras.__version__, "transformers": transformers.__version__,
            "datasets": datasets.__version__, "tfemotion": tfemotion.__version__}
