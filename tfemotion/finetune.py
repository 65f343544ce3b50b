"""Fine-tuning a sequence classifier with Keras ``compile``/``fit`` (chapter 2, second half).

The Keras steps are public, so a notebook or script can run them one by one:

1. ``build_classifier``: ``TFAutoModelForSequenceClassification`` with a new head for the
   dataset's label names;
2. ``train_dataset``: the ``tf.data`` pipeline from ``Dataset.to_tf_dataset``, texts bucketed by
   length and padded per batch, reshuffled every epoch;
3. ``choose_schedule`` (in ``tfemotion.config``) then ``compile_classifier``: AdamW with a linear
   decay and the learning rate chosen for the checkpoint,
   ``SparseCategoricalCrossentropy(from_logits=True)``, accuracy;
4. ``model.fit`` with ``ValidationMetrics``, which adds the validation accuracy and weighted F1
   (the book's ``compute_metrics``) to every epoch's logs;
5. ``save_run``: model, tokenizer, run record, metrics and evaluation in a run folder.

``train`` is the one-call path: the same steps, plus a checkpoint per epoch, ``--resume``, a NaN
stop, TensorBoard logs, the best epoch restored (by validation F1), and the ``tf.distribute``
strategy and mixed precision of ``tfemotion.hardware``. ``recipe="book-keras"`` is the book's
Keras code instead: Adam 5e-5 on globally padded texts. The run folder is described in
``tfemotion.runfolder``.

Example:
    >>> from tfemotion.config import DataConfig, FinetuneConfig
    >>> metrics = train(splits, DataConfig(source="data/"), FinetuneConfig(model="ckpt/"),
    ...                 "runs/emotion")  # doctest: +SKIP
    >>> metrics["best_epoch"]  # doctest: +SKIP
    2
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import tf_keras

from tfemotion.callbacks import (EpochKeeper, NaNGuard, ValidationMetrics, epoch_checkpoint,
                                 restore_checkpoint, tensorboard_callbacks)
from tfemotion.config import (HF_MULTI_LABEL, MULTI_LABEL, SINGLE_LABEL, DataConfig,
                              FinetuneConfig, Schedule, choose_schedule)
from tfemotion.evaluate import evaluate_split, summary_metrics
from tfemotion.files import write_json
from tfemotion.hardware import (Hardware, precision_policy, resolve_hardware,
                                suggest_bfloat16)
from tfemotion.inputs import TrainData, train_dataset
from tfemotion.runfolder import RunFolder, RunRecord, completed_epochs, library_versions

logger = logging.getLogger(__name__)

EPOCH_KEYS = ("epoch", "loss", "val_loss", "val_accuracy", "val_f1_weighted")
# Settings a resumed run may change; any other change would make it a different run.
RESUMABLE_CHANGES = ("resume", "error_examples", "learning_rate", "strategy", "xla")
# A last-epoch gain in validation weighted F1 at least this large means training stopped early.
STEEP_F1_GAIN = 0.02


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
        data_config: DataConfig. Recorded in the run record so the run can be re-evaluated.
        finetune_config: FinetuneConfig. Model, schedule, recipe, hardware options.
        run_dir: str or Path. The run folder (see ``tfemotion.runfolder``).
        callbacks: sequence of tf_keras callbacks, optional. Run after the built-in ones.
        verbose: Keras ``fit`` verbosity (``"auto"``, 0, 1, 2).

    Returns:
        The metrics written to ``RUN/metrics.json``: ``{"epochs": [{"epoch", "loss",
        "val_loss", "val_accuracy", "val_f1_weighted"}, ...], "best_epoch", "validation":
        {"accuracy", "f1_weighted", "f1_macro"}, "test": {...}, "train_seconds",
        "train_examples_per_second", "schedule": {"learning_rate", "warmup_ratio", "reason"},
        "advice"}`` (``test`` only when there is a test split; ``advice`` is None or one line).

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
    from tfemotion.multilabel import is_multi_label, with_multi_hot_labels

    names = _check_splits(dataset_dict)
    multi_label = is_multi_label(dataset_dict)
    config = finetune_config
    run = RunFolder(run_dir)
    # MultiWorkerMirroredStrategy must exist before TensorFlow does any other work.
    hardware = resolve_hardware(config)
    suggest_bfloat16(config.mixed_precision, "FinetuneConfig(mixed_precision='mixed_bfloat16') "
                     "(command line: --mixed-precision mixed_bfloat16)")
    rows = _prepare_run(run, config)
    work = run if hardware.is_chief else RunFolder(tempfile.mkdtemp(prefix="tfemotion-worker-"))
    tf_keras.utils.set_random_seed(config.seed)
    tokenizer = load_tokenizer(config.model)
    with precision_policy(config.mixed_precision), hardware.strategy.scope():
        model = build_classifier(config.model, names, multi_label)
        schedule = choose_schedule(config, hidden_size(model.config))
        if rows:
            schedule = _kept_schedule(run, config, schedule)
        max_length = model_max_length(tokenizer, model.config, config.max_length)
        encoded = tokenize(dataset_dict, tokenizer, max_length)
        if multi_label:
            encoded = with_multi_hot_labels(encoded, len(names))
        data = train_dataset(encoded["train"], tokenizer, config, max_length, hardware)
        compile_classifier(model, schedule, config, data.steps * config.epochs, multi_label)
        checkpoint = epoch_checkpoint(model)
        if rows:
            restore_checkpoint(checkpoint, model, run.checkpoint(len(rows)))
    record = _run_record(data_config, config, names, max_length, schedule, hardware, data,
                         multi_label)
    if hardware.is_chief:
        record.save(run)
    logger.info("Fine-tuning %s: %s", config.model, schedule.reason)

    guard = NaNGuard()
    validation = ValidationMetrics(encoded["validation"], tokenizer, config.batch_size,
                                   train_examples=data.examples, rows=rows)
    keeper = EpochKeeper(validation, checkpoint, work)
    all_callbacks = [guard, validation, keeper, *tensorboard_callbacks(work), *(callbacks or [])]
    if len(rows) < config.epochs:
        logger.info("Training epochs %d..%d on %s (%d replica(s)), %d steps per epoch",
                    len(rows) + 1, config.epochs, hardware.kind, hardware.replicas, data.steps)
        model.fit(data.dataset, epochs=config.epochs, initial_epoch=len(rows),
                  steps_per_epoch=data.steps, callbacks=all_callbacks, verbose=verbose)
    if guard.tripped:
        raise NaNLossError(_nan_message(run, guard, rows, schedule))

    best = best_epoch(rows)
    if best != len(rows):
        prefix = work.checkpoint(best)
        if not Path(f"{prefix}.index").exists():  # a resumed worker's fresh folder: use the chief's
            prefix = run.checkpoint(best)
        restore_checkpoint(epoch_checkpoint(model), model, prefix, partial=True)
    metrics = save_run(work.root, model, tokenizer, encoded, record, rows, best)
    if not hardware.is_chief:
        shutil.rmtree(work.root, ignore_errors=True)
    return metrics


def build_classifier(checkpoint: str, label_names: Sequence[str],
                     multi_label: bool = False) -> Any:
    """The checkpoint's encoder with a new classification head for ``label_names``.

    The head's labels go into the model config (``id2label``/``label2id``), so the saved model,
    its pipeline and its export name the labels.

    Args:
        checkpoint: str. Hub id or local folder of any BERT- or RoBERTa-family checkpoint.
        label_names: sequence of str. Name of each label id.
        multi_label: bool. Several labels per text: the config's ``problem_type`` becomes
            ``multi_label_classification`` (sigmoid outputs, as Hugging Face's pipeline reads).

    Returns:
        A ``TFAutoModelForSequenceClassification`` model.

    Example:
        >>> model = build_classifier("distilbert-base-uncased", ["neg", "pos"])  # doctest: +SKIP
        >>> model.config.id2label  # doctest: +SKIP
        {0: 'neg', 1: 'pos'}
    """
    from transformers import TFAutoModelForSequenceClassification

    from tfemotion.checkpoints import load_tf_model

    names = [str(name) for name in label_names]
    extra = {"problem_type": HF_MULTI_LABEL} if multi_label else {}
    return load_tf_model(
        TFAutoModelForSequenceClassification, checkpoint, num_labels=len(names),
        id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)},
        **extra,
    )


def hidden_size(model_config: Any) -> Optional[int]:
    """The encoder's width from a transformers config (``hidden_size``, DistilBERT's ``dim``).

    Example:
        >>> from types import SimpleNamespace
        >>> hidden_size(SimpleNamespace(dim=768)), hidden_size(SimpleNamespace())
        (768, None)
    """
    for name in ("hidden_size", "dim", "d_model"):
        value = getattr(model_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def compile_classifier(model: Any, schedule: Schedule, config: FinetuneConfig,
                       total_steps: int, multi_label: bool = False) -> None:
    """``model.compile`` with the optimizer of ``config.recipe``, the loss and accuracy.

    ``default``: AdamW (LayerNorm weights and biases not decayed, ``config.weight_decay``) with a
    linear warm-up over ``schedule.warmup_ratio`` of the steps and a linear decay to 0.
    ``book-keras``: Adam at a constant rate. Both use
    ``SparseCategoricalCrossentropy(from_logits=True)`` and accuracy, from ``tf_keras``; with
    ``multi_label``, ``BinaryCrossentropy(from_logits=True)`` over multi-hot targets and the
    share of label decisions right at probability 0.5 (``accuracy``).

    Args:
        model: a transformers TF sequence classifier.
        schedule: Schedule. From ``tfemotion.config.choose_schedule``.
        config: FinetuneConfig. ``recipe``, ``weight_decay``, ``xla``.
        total_steps: int. Optimizer steps of the whole run (epochs x steps per epoch).
        multi_label: bool. Multi-hot targets: binary cross-entropy.

    Example:
        >>> compile_classifier(model, choose_schedule(config, 384), config, 500)  # doctest: +SKIP
    """
    if config.recipe == "book-keras":
        optimizer = tf_keras.optimizers.Adam(learning_rate=schedule.learning_rate)
    else:
        from transformers import create_optimizer

        optimizer, _ = create_optimizer(
            init_lr=schedule.learning_rate, num_train_steps=total_steps,
            num_warmup_steps=int(schedule.warmup_ratio * total_steps),
            weight_decay_rate=config.weight_decay,
        )
    if multi_label:
        loss = tf_keras.losses.BinaryCrossentropy(from_logits=True)
        accuracy = tf_keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)  # logit 0 = p 0.5
    else:
        loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        accuracy = tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy], jit_compile=config.xla)


def save_run(run_dir: str | Path, model: Any, tokenizer: Any, encoded: Any, record: RunRecord,
             rows: Sequence[dict[str, Any]], best: Optional[int] = None) -> dict[str, Any]:
    """Write a trained model's run folder: model, tokenizer, record, metrics, evaluation.

    The validation split (and the test split, when ``encoded`` has one) is evaluated with the
    model as it is: its metrics, confusion matrix, per-class report and error tables go to the
    run folder (see ``tfemotion.runfolder``), so ``tfemotion evaluate`` and ``tfemotion export``
    work on it.

    Args:
        run_dir: str or Path. The run folder.
        model: the trained sequence classifier.
        tokenizer: its tokenizer.
        encoded: DatasetDict. The tokenized splits (``validation``, optionally ``test``).
        record: RunRecord. What the run was (settings, labels, max length, schedule).
        rows: sequence of dict. One row per epoch (``ValidationMetrics.rows``).
        best: int, optional. The epoch whose weights the model holds (default: the last).

    Returns:
        The metrics written to ``RUN/metrics.json`` (see ``train``).

    Example:
        >>> metrics = save_run("runs/mine", model, tokenizer, encoded, record,
        ...                    validation.rows)  # doctest: +SKIP
    """
    run = RunFolder(run_dir)
    if not rows:
        raise ValueError("save_run needs at least one trained epoch. Received: rows=[]")
    if not record.versions:  # a record built by hand (the Keras steps one by one)
        record = dataclasses.replace(record, versions=library_versions())
    model.save_pretrained(str(run.model))
    tokenizer.save_pretrained(str(run.model))
    record.save(run)
    config = record.finetune
    if record.multi_label:
        record = _with_tuned_thresholds(record, model, tokenizer, encoded["validation"])
        record.save(run)
    results = {}
    for split in ("validation", "test"):
        if split in encoded:
            out = run.root if split == "validation" else run.evaluation(split)
            results[split] = evaluate_split(
                model, tokenizer, encoded[split], record.label_names, out,
                batch_size=config.batch_size, error_examples=config.error_examples,
                title=f"Normalized confusion matrix ({split})", thresholds=record.thresholds)
    seconds = float(sum(r["train_seconds"] for r in rows))
    epoch_keys = EPOCH_KEYS + (("val_f1_micro",) if record.multi_label else ())
    metrics = {
        "epochs": [{k: row[k] for k in epoch_keys} for row in rows],
        "best_epoch": int(best or rows[-1]["epoch"]),
        **{split: summary_metrics(result) for split, result in results.items()},
        "train_seconds": seconds,
        "train_examples_per_second": float(sum(r["train_examples"] for r in rows)) / seconds
        if seconds else 0.0,
        "schedule": record.schedule.to_dict(),
        "advice": training_advice(rows),
    }
    if record.multi_label:
        metrics.update(thresholds=dict(zip(record.label_names, record.thresholds)),
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


def best_epoch(rows: Sequence[dict[str, Any]]) -> int:
    """The epoch (1-based) with the highest validation weighted F1 (micro F1 for multi-label
    runs, whose rows hold ``val_f1_micro``); the earliest on ties.

    Example:
        >>> best_epoch([{"epoch": 1, "val_f1_weighted": 0.8}, {"epoch": 2, "val_f1_weighted": 0.9},
        ...             {"epoch": 3, "val_f1_weighted": 0.9}])
        2
    """
    if not rows:
        raise ValueError("no completed epoch to choose from. Received: rows=[]")
    key = _f1_key(rows)
    return int(max(rows, key=lambda r: (r[key], -r["epoch"]))["epoch"])


def _f1_key(rows: Sequence[dict[str, Any]]) -> str:
    """The validation F1 an epoch is judged by: micro F1 in multi-label runs, else weighted."""
    return "val_f1_micro" if "val_f1_micro" in rows[-1] else "val_f1_weighted"


def _with_tuned_thresholds(record: RunRecord, model: Any, tokenizer: Any,
                           validation: Any) -> RunRecord:
    """The record with each label's decision threshold tuned on the validation split."""
    from tfemotion.evaluate import predict_logits
    from tfemotion.multilabel import sigmoid, tune_thresholds

    probabilities = sigmoid(predict_logits(model, validation, tokenizer,
                                           record.finetune.batch_size))
    thresholds, global_threshold = tune_thresholds(probabilities,
                                                   np.asarray(validation["label"]))
    logger.info("Decision thresholds tuned on the validation split: %s (global %.2f)",
                dict(zip(record.label_names, thresholds)), global_threshold)
    return dataclasses.replace(record, thresholds=tuple(thresholds),
                               global_threshold=global_threshold)


def training_advice(rows: Sequence[dict[str, Any]]) -> Optional[str]:
    """One line when the validation F1 was still rising steeply in the last epoch, else None.

    Steeply: the last epoch gained at least ``STEEP_F1_GAIN`` (2 points) of weighted F1 (micro
    F1 for multi-label runs).

    Example:
        >>> training_advice([{"epoch": 1, "val_f1_weighted": 0.60},
        ...                  {"epoch": 2, "val_f1_weighted": 0.73}])
        'Validation F1 was still rising steeply in the last epoch (0.6000 -> 0.7300): more epochs or a higher learning rate would likely help.'
        >>> training_advice([{"epoch": 1, "val_f1_weighted": 0.92},
        ...                  {"epoch": 2, "val_f1_weighted": 0.93}]) is None
        True
    """
    if len(rows) < 2:
        return None
    key = _f1_key(rows)
    before, last = rows[-2][key], rows[-1][key]
    if last - before < STEEP_F1_GAIN:
        return None
    return (f"Validation F1 was still rising steeply in the last epoch ({before:.4f} -> "
            f"{last:.4f}): more epochs or a higher learning rate would likely help.")


# endregion
# region Run folder


def _check_splits(dataset_dict: Any) -> list[str]:
    from datasets import ClassLabel

    from tfemotion.data import label_names

    missing = [s for s in ("train", "validation") if s not in dataset_dict]
    if missing:
        raise ValueError(f"training needs train and validation splits; missing {missing}. "
                         f"Received: splits={sorted(dataset_dict)}")
    for split, dataset in dataset_dict.items():
        label = dataset.features.get("label")
        if "text" not in dataset.column_names or not isinstance(
                getattr(label, "feature", label), ClassLabel):
            raise ValueError(
                f"split {split!r} needs a 'text' column and a ClassLabel 'label' column (or a "
                f"Sequence of ClassLabel for multi-label data; see tfemotion.data.load_splits). "
                f"Received: features={dataset.features}"
            )
        if len(dataset) == 0:
            raise ValueError(f"split {split!r} is empty. Received: rows=0")
    return label_names(dataset_dict)


def _prepare_run(run: RunFolder, config: FinetuneConfig) -> list[dict[str, Any]]:
    """The completed epochs' rows to continue from ([] for a fresh run); refuse to overwrite."""
    if not config.resume:
        if run.holds_training():
            raise FileExistsError(
                f"{run.root} already holds a training run: pass resume=True (--resume) to "
                f"continue it, or choose another run folder. Received: run_dir={str(run.root)!r}"
            )
        return []
    if not run.state.exists():
        raise ValueError(
            f"resume=True but {run.root} holds no completed epoch ({run.state} is missing); "
            f"start without --resume. Received: run_dir={str(run.root)!r}"
        )
    saved = RunRecord.load(run).finetune.to_dict()
    current = config.to_dict()
    # A learning rate or warm-up left to be chosen keeps the resumed run's (see _kept_schedule).
    changed = sorted(k for k in current
                     if k not in RESUMABLE_CHANGES and saved.get(k) != current[k]
                     and not (k == "warmup_ratio" and current[k] is None))
    if changed:
        raise ValueError(
            f"a resumed run must keep the settings it started with; changed: "
            f"{ {k: (saved.get(k), current[k]) for k in changed} }. "
            f"Received: run_dir={str(run.root)!r}"
        )
    rows = completed_epochs(run)
    logger.info("Resuming %s after epoch %d of %d", run.root, len(rows), config.epochs)
    return rows


def _kept_schedule(run: RunFolder, config: FinetuneConfig, chosen: Schedule) -> Schedule:
    """On ``--resume``: the run's own learning rate and warm-up, unless new ones are given."""
    saved = RunRecord.load(run).schedule
    if config.learning_rate is None and config.warmup_ratio is None:
        return saved
    rate = chosen.learning_rate if config.learning_rate is not None else saved.learning_rate
    warmup = chosen.warmup_ratio if config.warmup_ratio is not None else saved.warmup_ratio
    return Schedule(rate, warmup, f"resumed with learning rate {rate:g} and warm-up "
                                  f"{warmup:.0%} (given values replace the run's: "
                                  f"{saved.reason})")


def _run_record(data_config: DataConfig, config: FinetuneConfig, names: list[str],
                max_length: int, schedule: Schedule, hardware: Hardware,
                data: TrainData, multi_label: bool = False) -> RunRecord:
    padding = 1 - data.real_tokens / data.padded_tokens if data.padded_tokens else None
    return RunRecord(
        data=data_config, finetune=config, label_names=tuple(names), max_length=max_length,
        schedule=schedule, strategy=hardware.kind, replicas=hardware.replicas,
        steps_per_epoch=data.steps, train_examples_per_epoch=data.examples,
        padding_share=None if padding is None else round(padding, 4),
        versions=library_versions(), problem_type=MULTI_LABEL if multi_label else SINGLE_LABEL,
    )


def _nan_message(run: RunFolder, guard: NaNGuard, rows: list[dict[str, Any]],
                 schedule: Schedule) -> str:
    epoch, step = guard.tripped
    if rows:
        kept = (f"The checkpoint of epoch {len(rows)} ({run.checkpoint(len(rows))}) is kept; "
                f"continue from it with --resume (a lower --learning-rate is allowed).")
    else:
        kept = "No epoch completed, so there is no checkpoint."
    return (f"the training loss became NaN at epoch {epoch}, step {step}, and training stopped. "
            f"{kept} Try a lower learning rate or mixed_precision='none'. "
            f"Received: learning_rate={schedule.learning_rate}")


# endregion
