"""Fine-tuning a sequence classifier with Keras ``compile``/``fit`` (chapter 2, second half).

The Keras steps are public, so a notebook or script can run them one by one:

1. ``build_classifier`` (``tfemotion.training.classifier``):
   ``TFAutoModelForSequenceClassification`` with a new head for the task's labels (a
   multi-label head starts at the labels' frequencies: ``start_at_label_frequencies``);
2. ``train_dataset`` (``tfemotion.training.inputs``): the ``tf.data`` pipeline, texts bucketed
   by length and padded per batch, reshuffled every epoch;
3. ``choose_schedule`` (``tfemotion.config``) then ``compile_classifier``: AdamW with a linear
   decay, the learning rate chosen for the checkpoint and the epochs for the data's size, the
   task's loss, accuracy;
4. ``model.fit`` with ``ValidationMetrics`` (``tfemotion.training.callbacks``), which adds the
   validation accuracy and weighted F1 (the book's ``compute_metrics``) to every epoch's logs;
5. ``save_run`` (``tfemotion.training.results``): model, tokenizer, run record, metrics and
   evaluation in a run folder.

``train`` is the one-call path: the same steps, plus a checkpoint per epoch, ``--resume``, a NaN
stop, TensorBoard logs, the best epoch restored (by validation F1), and the ``tf.distribute``
strategy and mixed precision of ``tfemotion.hardware``. ``recipe="book-keras"`` is the book's
Keras code instead: Adam 5e-5 on globally padded texts. ``train`` is also the entry point of
every other recipe: with ``recipe="auto"`` (the default) a small training split gets the
contrastive recipe of ``tfemotion.training.contrastive``. The run folder is described in
``tfemotion.runfolder``.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

import tf_keras

from tfemotion.config import (DataConfig, FinetuneConfig, Schedule, choose_recipe,
                              choose_schedule)
from tfemotion.files import write_json
from tfemotion.hardware import Hardware, precision_policy, resolve_hardware, suggest_bfloat16
from tfemotion.runfolder import RunFolder, RunRecord, completed_epochs, library_versions
from tfemotion.task import Task
from tfemotion.training.callbacks import (EpochKeeper, NaNGuard, NaNLossError,  # noqa: F401
                                          ValidationMetrics, epoch_checkpoint,
                                          restore_checkpoint, tensorboard_callbacks)
from tfemotion.training.classifier import (build_classifier, compile_classifier, hidden_size,
                                           start_at_label_frequencies)
from tfemotion.training.inputs import TrainData, train_dataset
from tfemotion.training.results import best_epoch, save_run

logger = logging.getLogger(__name__)

# Settings a resumed run may change; any other change would make it a different run.
RESUMABLE_CHANGES = ("resume", "error_examples", "learning_rate", "strategy", "xla",
                     "checkpoint_steps", "calibrate")


def train(
    dataset_dict: Any,
    data_config: DataConfig,
    finetune_config: FinetuneConfig,
    run_dir: str | Path,
    *,
    callbacks: Optional[Sequence[Any]] = None,
    verbose: Any = "auto",
    task: Optional[Task] = None,
) -> dict[str, Any]:
    """Train with the recipe the settings and the data choose, save, evaluate (``tfemotion train``).

    The recipe is ``finetune_config.recipe``, or for ``"auto"`` the one for the training split's
    size (``tfemotion.config.choose_recipe``): fine-tuning (``default``, ``book-keras``), or
    ``contrastive`` (``tfemotion.training.contrastive``: SetFit's recipe for few labelled
    texts). The run record says which ran and why (``recipe``, ``recipe_reason``), and where the
    validation figures come from (``validation``): without a validation split, fine-tuning
    holds out ``holdout_share`` of the training texts to choose its best epoch; the contrastive
    recipe needs none.

    Args:
        dataset_dict: DatasetDict. ``train`` (``validation`` and ``test`` optional), columns
            ``text`` and ``label`` (``ClassLabel`` with names), as from ``data.load_splits``.
        data_config: DataConfig. Recorded in the run record so the run can be re-evaluated.
        finetune_config: FinetuneConfig. Model, schedule, recipe, hardware options.
        run_dir: str or Path. The run folder (see ``tfemotion.runfolder``).
        callbacks: sequence of tf_keras callbacks, optional. Run after the built-in ones.
        verbose: Keras ``fit`` verbosity (``"auto"``, 0, 1, 2).
        task: Task, optional. The data's task (default: ``tfemotion.data.task_of`` the splits).

    Returns:
        The metrics written to ``RUN/metrics.json``: ``{"epochs": [{"epoch", "loss",
        "val_loss", "val_accuracy", "val_f1_weighted"}, ...], "best_epoch", "validation":
        {the task's headline metrics}, "test": {...}, "train_seconds",
        "train_examples_per_second", "schedule": {"learning_rate", "warmup_ratio", "reason"},
        "advice"}`` (``test`` only when there is a test split; ``advice`` is None or one line;
        a multi-label run adds ``val_f1_micro`` to each epoch, and ``thresholds``), and
        ``recipe``: ``{"name", "reason", "validation"}`` (the contrastive recipe adds its
        particulars: pooling, pairs, head; its ``epochs`` rows hold ``epoch`` and ``loss``).

    Raises:
        ValueError: no train split, or no labels; an option the hardware cannot honour; a
            resume that does not match the run folder.
        FileExistsError: ``run_dir`` already holds a run and ``resume`` is off.
        NaNLossError: the loss became NaN; the checkpoints of completed epochs are kept.

    Example:
        >>> import tempfile
        >>> config = FinetuneConfig(model=checkpoint, epochs=1, batch_size=16, learning_rate=5e-4,
        ...                         recipe="default")
        >>> metrics = train(splits, DataConfig(source=data_dir), config, tempfile.mkdtemp(),
        ...                 verbose=0)
        >>> metrics["best_epoch"], sorted(metrics["test"])
        (1, ['accuracy', 'f1_macro', 'f1_weighted'])
    """
    from tfemotion.checkpoints import load_tokenizer, model_max_length
    from tfemotion.data import task_of, tokenize, with_targets

    _check_splits(dataset_dict)
    task = task or task_of(dataset_dict)
    recipe, recipe_reason = choose_recipe(finetune_config, len(dataset_dict["train"]),
                                          task.num_labels)
    logger.info("%s", recipe_reason)
    run = RunFolder(run_dir)
    if recipe == "contrastive":
        from tfemotion.training.contrastive import train_contrastive

        rows = _prepare_run(run, finetune_config, task)
        return train_contrastive(dataset_dict, data_config, finetune_config, run, task,
                                 reason=recipe_reason, rows=rows, callbacks=callbacks,
                                 verbose=verbose)
    config = finetune_config.replace(recipe=recipe)  # the settings as given are recorded
    # MultiWorkerMirroredStrategy must exist before TensorFlow does any other work.
    hardware = resolve_hardware(config)
    suggest_bfloat16(config.mixed_precision, "FinetuneConfig(mixed_precision='mixed_bfloat16') "
                     "(command line: --mixed-precision mixed_bfloat16)")
    rows = _prepare_run(run, finetune_config, task)
    dataset_dict, validation_note = _with_validation(dataset_dict, task, config)
    work = run if hardware.is_chief else RunFolder(tempfile.mkdtemp(prefix="tfemotion-worker-"))
    tf_keras.utils.set_random_seed(config.seed)
    tokenizer = load_tokenizer(config.model)
    with precision_policy(config.mixed_precision), hardware.strategy.scope():
        model = build_classifier(config.model, task)
        max_length = model_max_length(tokenizer, model.config, config.max_length)
        encoded = with_targets(tokenize(dataset_dict, tokenizer, max_length), task)
        if task.multi_label and not rows:
            start_at_label_frequencies(model, encoded["train"]["label"])
        data = train_dataset(encoded["train"], tokenizer, config, max_length, hardware)
        schedule = choose_schedule(config, hidden_size(model.config), data.steps)
        if rows:
            schedule = _kept_schedule(run, config, schedule)
        compile_classifier(model, schedule, config, data.steps * schedule.epochs, task)
        checkpoint = epoch_checkpoint(model)
        if rows:
            restore_checkpoint(checkpoint, model, run.checkpoint(len(rows)))
    record = dataclasses.replace(
        _run_record(data_config, finetune_config, task, max_length, schedule, hardware, data),
        recipe=recipe, recipe_reason=recipe_reason, validation=validation_note)
    if hardware.is_chief:
        record.save(run)
    logger.info("Fine-tuning %s: %s", config.model, schedule.reason)

    guard = NaNGuard()
    validation = ValidationMetrics(encoded["validation"], tokenizer, task, config.batch_size,
                                   train_examples=data.examples, rows=rows)
    keeper = EpochKeeper(validation, checkpoint, work, task)
    all_callbacks = [guard, validation, keeper, *tensorboard_callbacks(work), *(callbacks or [])]
    if len(rows) < schedule.epochs:
        logger.info("Training epochs %d..%d on %s (%d replica(s)), %d steps per epoch",
                    len(rows) + 1, schedule.epochs, hardware.kind, hardware.replicas, data.steps)
        model.fit(data.dataset, epochs=schedule.epochs, initial_epoch=len(rows),
                  steps_per_epoch=data.steps, callbacks=all_callbacks, verbose=verbose)
    if guard.tripped:
        raise NaNLossError(_nan_message(run, guard, rows, schedule))

    best = best_epoch(rows, task)
    if best != len(rows):
        prefix = work.checkpoint(best)
        if not Path(f"{prefix}.index").exists():  # a resumed worker's fresh folder: use the chief's
            prefix = run.checkpoint(best)
        restore_checkpoint(epoch_checkpoint(model), model, prefix, partial=True)
    metrics = save_run(work.root, model, tokenizer, encoded, record, rows, best)
    metrics["recipe"] = {"name": recipe, "reason": recipe_reason, "validation": validation_note}
    write_json(metrics, work.metrics)
    if not hardware.is_chief:
        shutil.rmtree(work.root, ignore_errors=True)
    return metrics


def _check_splits(dataset_dict: Any) -> None:
    from datasets import ClassLabel

    if "train" not in dataset_dict:
        raise ValueError(f"training needs a train split. Received: splits={sorted(dataset_dict)}")
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


def _with_validation(dataset_dict: Any, task: Task, config: FinetuneConfig) -> tuple[Any, str]:
    """The splits with a validation split (held out of train when the data has none), and a
    line for the record saying where it comes from."""
    from datasets import DatasetDict

    from tfemotion.training.holdout import hold_out

    if "validation" in dataset_dict:
        return dataset_dict, f"the validation split ({len(dataset_dict['validation'])} texts)"
    kept, held, note = hold_out(dataset_dict["train"], task, config.holdout_share, config.seed)
    logger.warning("No validation split: %s", note)
    return DatasetDict({**dataset_dict, "train": kept, "validation": held}), note


def _prepare_run(run: RunFolder, config: FinetuneConfig, task: Task) -> list[dict[str, Any]]:
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
    record = RunRecord.load(run)
    record.task.require_same(task, f"the data given to resume {run.root}")
    saved, current = record.finetune.to_dict(), config.to_dict()
    # A learning rate or warm-up left to be chosen keeps the resumed run's (see _kept_schedule).
    changed = sorted(k for k in current
                     if k not in RESUMABLE_CHANGES and saved.get(k) != current[k]
                     and not (k == "warmup_ratio" and current[k] is None)
                     and not (k == "recipe" and current[k] == "auto"
                              and saved.get(k) == record.recipe_ran))
    if changed:
        raise ValueError(
            f"a resumed run must keep the settings it started with; changed: "
            f"{ {k: (saved.get(k), current[k]) for k in changed} }. "
            f"Received: run_dir={str(run.root)!r}"
        )
    rows = completed_epochs(run)
    logger.info("Resuming %s after epoch %d", run.root, len(rows))
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
                                  f"{saved.reason})", epochs=saved.epochs)


def _run_record(data_config: DataConfig, config: FinetuneConfig, task: Task,
                max_length: int, schedule: Schedule, hardware: Hardware,
                data: TrainData) -> RunRecord:
    padding = 1 - data.real_tokens / data.padded_tokens if data.padded_tokens else None
    return RunRecord(
        data=data_config, finetune=config, task=task, max_length=max_length,
        schedule=schedule, strategy=hardware.kind, replicas=hardware.replicas,
        steps_per_epoch=data.steps, train_examples_per_epoch=data.examples,
        padding_share=None if padding is None else round(padding, 4),
        versions=library_versions(),
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
