"""Fine-tuning a sequence classifier with Keras ``compile``/``fit`` (chapter 2, second half).

``train`` builds ``TFAutoModelForSequenceClassification`` with the dataset's label names, feeds
it batches of similar-length texts padded per batch (``Dataset.to_tf_dataset``, length buckets
reshuffled every epoch), optimises with AdamW and a linear decay, evaluates the validation split
after every epoch (accuracy, weighted F1), checkpoints every epoch, restores the best epoch (by
validation F1), saves model and tokenizer and evaluates validation and test.
``recipe="book-keras"`` is the book's Keras code instead: Adam 5e-5 on globally padded texts.
Devices, the ``tf.distribute`` strategy and mixed precision come from ``tfemotion.hardware``.

Run folder::

    RUN/config.json              every setting used, label names, max length, versions
    RUN/model/                   save_pretrained of the model and its tokenizer
    RUN/history.csv              one row per epoch (continuous across --resume)
    RUN/metrics.json             per-epoch figures, best epoch, validation/test metrics, speed
    RUN/confusion_matrix.png     validation split, with classification_report.csv/.md,
    RUN/errors_highest_loss.csv  errors_lowest_loss.csv (and .md)
    RUN/evaluation/test/         the same files for the test split
    RUN/checkpoints/             epoch-K (model + optimizer after epoch K), state.json
    RUN/logs/                    TensorBoard

Example:
    >>> from tfemotion.config import DataConfig, FinetuneConfig
    >>> metrics = train(splits, DataConfig(source="data/"), FinetuneConfig(model="ckpt/"),
    ...                 "runs/emotion")  # doctest: +SKIP
    >>> metrics["best_epoch"]  # doctest: +SKIP
    2
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import tf_keras

from tfemotion.config import DataConfig, FinetuneConfig
from tfemotion.evaluate import (EVALUATION_DIR, MODEL_DIR, RUN_CONFIG_FILE, classification_metrics,
                                evaluate_split, loss_and_predictions)
from tfemotion.files import write_json
from tfemotion.hardware import Hardware, precision_policy, resolve_hardware

logger = logging.getLogger(__name__)

HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "state.json"
LOG_DIR = "logs"
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "val_f1_weighted",
                   "learning_rate", "train_seconds", "val_seconds", "train_examples")
EPOCH_KEYS = ("epoch", "loss", "val_loss", "val_accuracy", "val_f1_weighted")
# Texts are bucketed by length in steps of this many tokens and padded to the bucket's top.
BUCKET_WIDTH = 8
# Settings a resumed run may change; any other change would make it a different run.
RESUMABLE_CHANGES = ("resume", "error_examples", "learning_rate", "strategy", "xla")


class NaNLossError(RuntimeError):
    """The training loss became NaN or infinite; training stopped, good checkpoints kept."""


# region Public API


def train(
    dataset_dict: Any,
    data_config: DataConfig,
    finetune_config: FinetuneConfig,
    run_dir: str | Path,
    *,
    callbacks: Optional[Sequence[Any]] = None,
    verbose: Any = "auto",
) -> dict[str, Any]:
    """Fine-tune, checkpoint, restore the best epoch, save, evaluate (``tfemotion train``).

    Args:
        dataset_dict: DatasetDict. ``train`` and ``validation`` (``test`` optional), columns
            ``text`` and ``label`` (``ClassLabel`` with names), as from ``data.load_splits``.
        data_config: DataConfig. Recorded in ``RUN/config.json`` so the run can be re-evaluated.
        finetune_config: FinetuneConfig. Model, schedule, recipe, hardware options.
        run_dir: str or Path. The run folder (see the module docstring).
        callbacks: sequence of tf_keras callbacks, optional. Run after the built-in ones.
        verbose: Keras ``fit`` verbosity (``"auto"``, 0, 1, 2).

    Returns:
        The metrics written to ``RUN/metrics.json``: ``{"epochs": [{"epoch", "loss",
        "val_loss", "val_accuracy", "val_f1_weighted"}, ...], "best_epoch", "validation":
        {"accuracy", "f1_weighted", "f1_macro"}, "test": {...}, "train_seconds",
        "train_examples_per_second"}`` (``test`` only when there is a test split).

    Raises:
        ValueError: missing splits or labels; an option the hardware cannot honour; a resume
            that does not match the run folder.
        FileExistsError: ``run_dir`` already holds a run and ``resume`` is off.
        NaNLossError: the loss became NaN; the checkpoints of completed epochs are kept.

    Example:
        >>> metrics = train(splits, DataConfig(source="data/"),
        ...                 FinetuneConfig(model="ckpt/", epochs=3, learning_rate=5e-5),
        ...                 "runs/emotion")  # doctest: +SKIP
    """
    from tfemotion.checkpoints import load_tokenizer, model_max_length
    from tfemotion.data import tokenize

    names = _check_splits(dataset_dict)
    config = finetune_config
    run = Path(run_dir)
    # MultiWorkerMirroredStrategy must exist before TensorFlow does any other work.
    hardware = resolve_hardware(config)
    rows = _prepare_run(run, config)
    work = run if hardware.is_chief else Path(tempfile.mkdtemp(prefix="tfemotion-worker-"))
    tf_keras.utils.set_random_seed(config.seed)
    tokenizer = load_tokenizer(config.model)
    with precision_policy(config.mixed_precision), hardware.strategy.scope():
        model = _build_model(config.model, names)
        max_length = model_max_length(tokenizer, model.config, config.max_length)
        encoded = tokenize(dataset_dict, tokenizer, max_length)
        data = train_dataset(encoded["train"], tokenizer, config, max_length, hardware)
        _compile(model, config, data.steps * config.epochs)
        checkpoint = _checkpoint(model)
        if rows:
            _restore_checkpoint(checkpoint, model, _epoch_prefix(run, len(rows)))
    if hardware.is_chief:
        _write_run_config(run, data_config, config, names, max_length, hardware, data)

    guard = _NaNGuard()
    keeper = _EpochKeeper(encoded["validation"], tokenizer, config.batch_size, guard, checkpoint,
                          work, rows, data.examples)
    all_callbacks = [guard, keeper, *_tensorboard(work), *(callbacks or [])]
    if len(rows) < config.epochs:
        logger.info("Training %s for epochs %d..%d on %s (%d replica(s)), %d steps per epoch",
                    config.model, len(rows) + 1, config.epochs, hardware.kind, hardware.replicas,
                    data.steps)
        model.fit(data.dataset, epochs=config.epochs, initial_epoch=len(rows),
                  steps_per_epoch=data.steps, callbacks=all_callbacks, verbose=verbose)
    if guard.tripped:
        raise NaNLossError(_nan_message(run, guard, rows, config))
    logger.info("Fine-tuning history:\n%s", history_table(rows))

    best = best_epoch(rows)
    if best != len(rows):
        prefix = _epoch_prefix(work, best)
        if not Path(f"{prefix}.index").exists():  # a resumed worker's fresh folder: use the chief's
            prefix = _epoch_prefix(run, best)
        _restore_checkpoint(_checkpoint(model), model, prefix, partial=True)
    metrics = _save_and_evaluate(model, tokenizer, encoded, names, config, work, rows, best)
    if not hardware.is_chief:
        shutil.rmtree(work, ignore_errors=True)
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


def best_epoch(rows: Sequence[dict[str, Any]]) -> int:
    """The epoch (1-based) with the highest validation weighted F1; the earliest on ties.

    Example:
        >>> best_epoch([{"epoch": 1, "val_f1_weighted": 0.8}, {"epoch": 2, "val_f1_weighted": 0.9},
        ...             {"epoch": 3, "val_f1_weighted": 0.9}])
        2
    """
    if not rows:
        raise ValueError("no completed epoch to choose from. Received: rows=[]")
    return int(max(rows, key=lambda r: (r["val_f1_weighted"], -r["epoch"]))["epoch"])


# endregion
# region Input pipelines


@dataclass
class TrainData:
    """A repeating training ``tf.data.Dataset`` and the size of one epoch of it."""

    dataset: Any
    steps: int
    examples: int
    padded_tokens: int = 0  # tokens per epoch including padding (what the model computes on)
    real_tokens: int = 0


def train_dataset(encoded: Any, tokenizer: Any, config: FinetuneConfig, max_length: int,
                  hardware: Optional[Hardware] = None) -> TrainData:
    """The training input pipeline of ``config.recipe``.

    ``default``: ``to_tf_dataset`` yields one unpadded example at a time (cached after the
    first epoch), reshuffled every epoch, grouped by ``bucket_by_sequence_length`` into batches
    of similar length, each padded only to its bucket's top (a multiple of 8), prefetched.
    ``book-keras``: the book's pipeline, every text padded to the split's longest one
    (``padding=True`` over the whole split), then ``to_tf_dataset(batch_size=..., shuffle=True)``.

    Args:
        encoded: datasets.Dataset. The tokenized train split (``input_ids``, ``attention_mask``,
            ``length``, ``label``).
        tokenizer: the model's tokenizer.
        config: FinetuneConfig. ``recipe``, ``batch_size``, ``seed``.
        max_length: int. Truncation length (book recipe).
        hardware: Hardware, optional. On TPU, shapes are static (remainders dropped).

    Returns:
        A ``TrainData`` whose dataset repeats forever; ``steps`` batches make one epoch.

    Example:
        >>> data = train_dataset(encoded["train"], tok, FinetuneConfig(), 512)  # doctest: +SKIP
        >>> data.steps  # doctest: +SKIP
        254
    """
    import tensorflow as tf

    static = hardware is not None and hardware.kind == "tpu"
    if config.recipe == "book-keras":
        data = _book_keras_dataset(encoded, tokenizer, config.batch_size, max_length)
    else:
        data = _bucketed_dataset(encoded, tokenizer.pad_token_id or 0, config.batch_size,
                                 config.seed, static)
    options = tf.data.Options()
    # Every worker reads the in-memory data and keeps its share of the batches.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data.dataset = data.dataset.repeat().prefetch(tf.data.AUTOTUNE).with_options(options)
    return data


def bucket_boundaries(longest: int, width: int = BUCKET_WIDTH) -> list[int]:
    """Bucket boundaries for ``bucket_by_sequence_length``: texts of 1..8 tokens, 9..16, ...

    Example:
        >>> bucket_boundaries(20)
        [9, 17, 25]
    """
    return list(range(width + 1, longest + width + 1, width))


def _bucketed_dataset(encoded: Any, pad_id: int, batch_size: int, seed: int,
                      static: bool) -> TrainData:
    import tensorflow as tf

    lengths = np.asarray(encoded["length"])
    boundaries = bucket_boundaries(int(lengths.max()))
    bucket_of = np.searchsorted(boundaries, lengths, side="right")
    counts = np.bincount(bucket_of, minlength=len(boundaries) + 1)
    full, rest = counts // batch_size, counts % batch_size
    steps = int(full.sum() + (0 if static else (rest > 0).sum()))
    kept = counts - rest if static else counts
    padded = int(sum(kept[b] * (boundaries[b] - 1) for b in range(len(boundaries))))

    examples = encoded.to_tf_dataset(columns=["input_ids", "attention_mask"], label_cols="label",
                                     batch_size=None, shuffle=False, prefetch=False)
    pad = tf.constant(pad_id, tf.int64), tf.constant(0, tf.int64)
    dataset = (
        examples.cache()
        .shuffle(len(encoded), seed=seed, reshuffle_each_iteration=True)
        .bucket_by_sequence_length(
            lambda features, label: tf.shape(features["input_ids"])[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padding_values=({"input_ids": pad[0], "attention_mask": pad[1]}, pad[1]),
            pad_to_bucket_boundary=True,
            drop_remainder=static,
        )
    )
    return TrainData(dataset, steps, int(kept.sum()), padded, int(lengths.sum()))


def _book_keras_dataset(encoded: Any, tokenizer: Any, batch_size: int,
                        max_length: int) -> TrainData:
    def pad_globally(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(batch["text"], padding=True, truncation=True, max_length=max_length,
                         return_token_type_ids=False)

    padded = encoded.map(pad_globally, batched=True, batch_size=None, desc="Padding (book recipe)")
    dataset = padded.to_tf_dataset(columns=["input_ids", "attention_mask"], label_cols="label",
                                   shuffle=True, batch_size=batch_size)
    steps = int(dataset.cardinality())
    width = len(padded[0]["input_ids"])
    return TrainData(dataset, steps, len(encoded), len(encoded) * width,
                     int(np.sum(encoded["length"])))


# endregion
# region Model, optimizer, checkpoints


def _build_model(checkpoint: str, names: Sequence[str]) -> Any:
    from transformers import TFAutoModelForSequenceClassification

    from tfemotion.checkpoints import load_tf_model

    return load_tf_model(
        TFAutoModelForSequenceClassification, checkpoint, num_labels=len(names),
        id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)},
    )


def _compile(model: Any, config: FinetuneConfig, total_steps: int) -> None:
    if config.recipe == "book-keras":
        optimizer = tf_keras.optimizers.Adam(learning_rate=config.learning_rate)
    else:
        from transformers import create_optimizer

        # AdamW (LayerNorm weights and biases not decayed) with a linear decay to 0.
        optimizer, _ = create_optimizer(
            init_lr=config.learning_rate, num_train_steps=total_steps,
            num_warmup_steps=int(config.warmup_ratio * total_steps),
            weight_decay_rate=config.weight_decay,
        )
    model.compile(
        optimizer=optimizer,
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=config.xla,
    )


def _checkpoint(model: Any) -> Any:
    import tensorflow as tf

    return tf.train.Checkpoint(model=model, optimizer=model.optimizer)


def _epoch_prefix(run: Path, epoch: int) -> Path:
    return run / CHECKPOINT_DIR / f"epoch-{epoch}"


def _restore_checkpoint(checkpoint: Any, model: Any, prefix: Path, partial: bool = False) -> None:
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


def _learning_rate(optimizer: Any) -> float:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    rate = inner.learning_rate
    if isinstance(rate, tf_keras.optimizers.schedules.LearningRateSchedule):
        rate = rate(inner.iterations)
    return float(tf_keras.backend.get_value(rate))


# endregion
# region Callbacks



class _NaNGuard(tf_keras.callbacks.Callback):
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


class _EpochKeeper(tf_keras.callbacks.Callback):
    """After each good epoch: validation metrics into the logs, a checkpoint, history files.

    The validation figures are added to ``logs`` so that Keras' History, the progress bar and
    TensorBoard (later callbacks) all see them.
    """

    def __init__(self, validation: Any, tokenizer: Any, batch_size: int, guard: _NaNGuard,
                 checkpoint: Any, work: Path, rows: list[dict[str, Any]], examples: int) -> None:
        super().__init__()
        self.validation, self.tokenizer, self.batch_size = validation, tokenizer, batch_size
        self.guard, self.checkpoint, self.work = guard, checkpoint, work
        self.rows, self.examples = rows, examples
        self._start = 0.0

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        logger.info("Validation after each epoch:\n%s", history_table([]))

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if self.guard.tripped or logs is None:
            return  # no validation, no checkpoint: the last good one stays the latest
        train_seconds = time.perf_counter() - self._start
        start = time.perf_counter()
        outputs = loss_and_predictions(self.model, self.validation, self.tokenizer, self.batch_size)
        scores = classification_metrics(self.validation["label"], outputs["predicted_label"])
        logs.update(val_loss=float(outputs["loss"].mean()), val_accuracy=scores["accuracy"],
                    val_f1_weighted=scores["f1_weighted"],
                    learning_rate=_learning_rate(self.model.optimizer))
        row = {"epoch": epoch + 1, "loss": float(logs["loss"]),
               "accuracy": float(logs.get("accuracy", float("nan"))),
               "val_loss": logs["val_loss"], "val_accuracy": logs["val_accuracy"],
               "val_f1_weighted": logs["val_f1_weighted"], "learning_rate": logs["learning_rate"],
               "train_seconds": train_seconds, "val_seconds": time.perf_counter() - start,
               "train_examples": self.examples}
        self.checkpoint.write(str(_epoch_prefix(self.work, epoch + 1)))
        self.rows.append(row)
        _write_history(self.work, self.rows)
        logger.info("%s", history_table([row]).splitlines()[1])


def _tensorboard(work: Path) -> list[Any]:
    try:
        import tensorboard  # noqa: F401  (tf.summary writes nothing without it)
    except ImportError:
        logger.warning("No TensorBoard logs: the tensorboard package is missing "
                       "(pip install tensorboard).")
        return []
    return [tf_keras.callbacks.TensorBoard(log_dir=str(work / LOG_DIR), profile_batch=0,
                                           update_freq="epoch")]


# endregion
# region Run folder


def _check_splits(dataset_dict: Any) -> list[str]:
    from datasets import ClassLabel

    missing = [s for s in ("train", "validation") if s not in dataset_dict]
    if missing:
        raise ValueError(f"training needs train and validation splits; missing {missing}. "
                         f"Received: splits={sorted(dataset_dict)}")
    for split, dataset in dataset_dict.items():
        if "text" not in dataset.column_names or not isinstance(dataset.features.get("label"),
                                                                ClassLabel):
            raise ValueError(
                f"split {split!r} needs a 'text' column and a ClassLabel 'label' column (see "
                f"tfemotion.data.load_splits). Received: features={dataset.features}"
            )
        if len(dataset) == 0:
            raise ValueError(f"split {split!r} is empty. Received: rows=0")
    return list(dataset_dict["train"].features["label"].names)


def _prepare_run(run: Path, config: FinetuneConfig) -> list[dict[str, Any]]:
    """The completed epochs' rows to continue from ([] for a fresh run); refuse to overwrite."""
    state_path = run / CHECKPOINT_DIR / STATE_FILE
    if not config.resume:
        if state_path.exists() or (run / METRICS_FILE).exists() or (run / MODEL_DIR).exists():
            raise FileExistsError(
                f"{run} already holds a training run: pass resume=True (--resume) to continue it, "
                f"or choose another run folder. Received: run_dir={str(run)!r}"
            )
        return []
    if not state_path.exists():
        raise ValueError(
            f"resume=True but {run} holds no completed epoch ({state_path} is missing); start "
            f"without --resume. Received: run_dir={str(run)!r}"
        )
    saved = json.loads((run / RUN_CONFIG_FILE).read_text(encoding="utf-8"))["finetune"]
    current = config.to_dict()
    changed = sorted(k for k in current
                     if k not in RESUMABLE_CHANGES and saved.get(k) != current[k])
    if changed:
        raise ValueError(
            f"a resumed run must keep the settings it started with; changed: "
            f"{ {k: (saved.get(k), current[k]) for k in changed} }. Received: run_dir={str(run)!r}"
        )
    rows = json.loads(state_path.read_text(encoding="utf-8"))["rows"]
    logger.info("Resuming %s after epoch %d of %d", run, len(rows), config.epochs)
    return rows


def _write_history(work: Path, rows: list[dict[str, Any]]) -> None:
    write_json({"rows": rows, "completed_epochs": len(rows)}, work / CHECKPOINT_DIR / STATE_FILE)
    path = work / HISTORY_FILE
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    temporary.replace(path)


def _versions() -> dict[str, str]:
    import datasets
    import tensorflow as tf
    import transformers

    import tfemotion

    return {"python": sys.version.split()[0], "tensorflow": tf.__version__,
            "tf_keras": tf_keras.__version__, "transformers": transformers.__version__,
            "datasets": datasets.__version__, "tfemotion": tfemotion.__version__}


def _write_run_config(run: Path, data_config: DataConfig, config: FinetuneConfig,
                      names: list[str], max_length: int, hardware: Hardware,
                      data: TrainData) -> None:
    padding = 1 - data.real_tokens / data.padded_tokens if data.padded_tokens else None
    write_json({
        "data": data_config.to_dict(),
        "finetune": config.to_dict(),
        "label_names": names,
        "max_length": max_length,
        "seed": config.seed,
        "strategy": hardware.kind,
        "replicas": hardware.replicas,
        "steps_per_epoch": data.steps,
        "train_examples_per_epoch": data.examples,
        "padding_share": None if padding is None else round(padding, 4),
        "versions": _versions(),
    }, run / RUN_CONFIG_FILE)


def _nan_message(run: Path, guard: _NaNGuard, rows: list[dict[str, Any]],
                 config: FinetuneConfig) -> str:
    epoch, step = guard.tripped
    if rows:
        kept = (f"The checkpoint of epoch {len(rows)} ({_epoch_prefix(run, len(rows))}) is kept; "
                f"continue from it with --resume (a lower --learning-rate is allowed).")
    else:
        kept = "No epoch completed, so there is no checkpoint."
    return (f"the training loss became NaN at epoch {epoch}, step {step}, and training stopped. "
            f"{kept} Try a lower learning rate or mixed_precision='none'. "
            f"Received: learning_rate={config.learning_rate}")


def _save_and_evaluate(model: Any, tokenizer: Any, encoded: Any, names: list[str],
                       config: FinetuneConfig, work: Path, rows: list[dict[str, Any]],
                       best: int) -> dict[str, Any]:
    model.save_pretrained(str(work / MODEL_DIR))
    tokenizer.save_pretrained(str(work / MODEL_DIR))
    kwargs = {"batch_size": config.batch_size, "error_examples": config.error_examples}
    metric_keys = ("accuracy", "f1_weighted", "f1_macro")
    results = {"validation": evaluate_split(model, tokenizer, encoded["validation"], names, work,
                                            title="Normalized confusion matrix (validation)",
                                            **kwargs)}
    if "test" in encoded:
        results["test"] = evaluate_split(model, tokenizer, encoded["test"], names,
                                         work / EVALUATION_DIR / "test",
                                         title="Normalized confusion matrix (test)", **kwargs)
    seconds = float(sum(r["train_seconds"] for r in rows))
    metrics = {
        "epochs": [{k: row[k] for k in EPOCH_KEYS} for row in rows],
        "best_epoch": best,
        **{split: {k: result[k] for k in metric_keys} for split, result in results.items()},
        "train_seconds": seconds,
        "train_examples_per_second": float(sum(r["train_examples"] for r in rows)) / seconds,
    }
    write_json(metrics, work / METRICS_FILE)
    return metrics


# endregion
