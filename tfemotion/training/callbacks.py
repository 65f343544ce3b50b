"""The Keras callbacks of fine-tuning, and the checkpoints they write.

``ValidationMetrics`` (public) adds the book's validation figures (loss, accuracy, weighted F1)
to every epoch's logs; ``train`` adds a NaN stop (``NaNGuard``), a checkpoint plus history files
after every validated epoch (``EpochKeeper``) and TensorBoard logs.

Example:
    >>> validation = ValidationMetrics(encoded["validation"], tokenizer, task)
    >>> validation.rows
    []
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import tf_keras

from tfemotion.evaluation.metrics import task_metrics
from tfemotion.evaluation.outputs import loss_and_predictions
from tfemotion.runfolder import RunFolder, write_history
from tfemotion.task import Task

logger = logging.getLogger(__name__)


class ValidationMetrics(tf_keras.callbacks.Callback):
    """After every epoch, the validation loss, accuracy and weighted F1 in the epoch's logs.

    The figures are added to ``logs``, so Keras' progress bar, ``History`` and TensorBoard (and
    any later callback) see them as ``val_loss``, ``val_accuracy``, ``val_f1_weighted``. One row
    per epoch is kept in ``rows`` (the run's history). An epoch whose loss is not finite gets no
    row.

    Args:
        validation: datasets.Dataset. The tokenized validation split, with ``label``.
        tokenizer: the model's tokenizer (for the padding id).
        batch_size: int. Texts per forward pass.
        train_examples: int. Training examples per epoch, recorded in each row.
        rows: list of dict, optional. Rows of earlier epochs to continue (resume).

    Example:
        >>> from tfemotion.config import FinetuneConfig, choose_schedule
        >>> from tfemotion.training import build_classifier, compile_classifier, train_dataset
        >>> config = FinetuneConfig(model=checkpoint, batch_size=16)
        >>> data = train_dataset(encoded["train"], tokenizer, config, 64)
        >>> classifier = build_classifier(checkpoint, task)
        >>> compile_classifier(classifier, choose_schedule(config, 32), config, 2, task)
        >>> validation = ValidationMetrics(encoded["validation"], tokenizer, task, 16)
        >>> _ = classifier.fit(data.dataset, epochs=1, steps_per_epoch=2, callbacks=[validation],
        ...               verbose=0)
        >>> sorted(validation.rows[0])[-4:]
        ['val_accuracy', 'val_f1_weighted', 'val_loss', 'val_seconds']
    """

    def __init__(self, validation: Any, tokenizer: Any, task: Task, batch_size: int = 64,
                 train_examples: int = 0, rows: Optional[list[dict[str, Any]]] = None) -> None:
        super().__init__()
        self.validation, self.tokenizer, self.batch_size = validation, tokenizer, batch_size
        self.task = task
        self.train_examples = train_examples
        self.rows: list[dict[str, Any]] = rows if rows is not None else []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is None or not math.isfinite(float(logs.get("loss", 0.0))):
            return  # no validation, no row: the last good epoch stays the latest
        train_seconds = time.perf_counter() - self._start
        start = time.perf_counter()
        outputs = loss_and_predictions(self.model, self.validation, self.tokenizer, self.task,
                                       self.batch_size)
        scores = task_metrics(self.task, np.asarray(self.validation["label"]),
                              outputs["predicted"])
        if self.task.multi_label:  # decisions at probability 0.5
            scores["accuracy"] = 1.0 - scores["hamming_loss"]
            logs.update(val_f1_micro=scores["f1_micro"])
        logs.update(val_loss=float(outputs["loss"].mean()), val_accuracy=scores["accuracy"],
                    val_f1_weighted=scores["f1_weighted"],
                    learning_rate=current_learning_rate(self.model.optimizer))
        self.rows.append({
            "epoch": epoch + 1, "loss": float(logs["loss"]),
            "accuracy": float(logs.get("accuracy", float("nan"))),
            "val_loss": logs["val_loss"], "val_accuracy": logs["val_accuracy"],
            "val_f1_weighted": logs["val_f1_weighted"], "learning_rate": logs["learning_rate"],
            "train_seconds": train_seconds, "val_seconds": time.perf_counter() - start,
            "train_examples": self.train_examples,
            **({"val_f1_micro": logs["val_f1_micro"]} if self.task.multi_label else {}),
        })
        row = self.rows[-1]
        logger.debug("epoch %d: loss %.4f, validation loss %.4f, accuracy %.4f, weighted F1 %.4f",
                     row["epoch"], row["loss"], row["val_loss"], row["val_accuracy"],
                     row["val_f1_weighted"])


def epoch_checkpoint(model: Any) -> Any:
    """A ``tf.train.Checkpoint`` of the model and its optimizer (what each epoch writes)."""
    import tensorflow as tf

    return tf.train.Checkpoint(model=model, optimizer=model.optimizer)


def restore_checkpoint(checkpoint: Any, model: Any, prefix: Path, partial: bool = False) -> None:
    """Restore model (and optimizer state, unless ``partial``) written after an epoch."""
    import tensorflow as tf

    if not Path(f"{prefix}.index").exists():
        raise FileNotFoundError(f"checkpoint {prefix} is missing (expected {prefix}.index)")
    if partial:
        tf.train.Checkpoint(model=model).read(str(prefix)).expect_partial()
        return
    optimizer = model.optimizer
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    if hasattr(inner, "_create_all_weights"):  # legacy optimizers (transformers' AdamWeightDecay)
        inner._create_all_weights(model.trainable_variables)
    else:
        inner.build(model.trainable_variables)
    checkpoint.read(str(prefix)).assert_existing_objects_matched()


def current_learning_rate(optimizer: Any) -> float:
    """The optimizer's learning rate at its current step (schedules evaluated)."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    rate = inner.learning_rate
    if isinstance(rate, tf_keras.optimizers.schedules.LearningRateSchedule):
        rate = rate(inner.iterations)
    return float(tf_keras.backend.get_value(rate))


class NaNLossError(RuntimeError):
    """The training loss became NaN or infinite; training stopped, good checkpoints kept."""


class NaNGuard(tf_keras.callbacks.Callback):
    """Stops training at the first non-finite batch loss and remembers where."""

    def __init__(self) -> None:
        super().__init__()
        self.tripped: Optional[tuple[int, int]] = None  # (epoch, step), 1-based
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.tripped is None:
            self.tripped = (self._epoch + 1, batch + 1)
            self.model.stop_training = True


class EpochKeeper(tf_keras.callbacks.Callback):
    """After each validated epoch: a checkpoint, then the history files (for ``--resume``)."""

    def __init__(self, validation: ValidationMetrics, checkpoint: Any, work: RunFolder,
                 task: Task) -> None:
        super().__init__()
        self.validation, self.checkpoint, self.work = validation, checkpoint, work
        self.task = task

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        rows = self.validation.rows
        if not rows or rows[-1]["epoch"] != epoch + 1:
            return  # the epoch was not validated (NaN loss): keep the last good checkpoint
        self.checkpoint.write(str(self.work.checkpoint(epoch + 1)))
        write_history(self.work, rows, self.task)


def tensorboard_callbacks(work: RunFolder) -> list[Any]:
    """A TensorBoard callback writing to ``RUN/logs`` (none, with a warning, without tensorboard)."""
    try:
        import tensorboard  # noqa: F401  (tf.summary writes nothing without it)
    except ImportError:
        logger.warning("No TensorBoard logs: the tensorboard package is missing "
                       "(pip install tensorboard).")
        return []
    return [tf_keras.callbacks.TensorBoard(log_dir=str(work.logs), profile_batch=0,
                                           update_freq="epoch")]
