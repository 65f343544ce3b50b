"""The contrastive recipe for few labelled texts: SetFit (Tunstall et al. 2022) in TensorFlow.

Two phases, after which the run folder is the same product as fine-tuning's:

1. The sentence encoder (the checkpoint's pooling, ``tfemotion.models.pooling``) is tuned on
   pairs of training texts (``tfemotion.training.pairs``: every pair of each step's texts by
   default, SetFit's oversampled pairs as an option): the cosine of a pair's two vectors is
   pulled towards 1 when the texts share a label and towards 0 when they do not (squared
   error, SetFit's ``CosineSimilarityLoss``), with AdamW, a linear warm-up and decay. Each
   step encodes its distinct texts once, padded to their own longest. Texts made from the
   label names (``tfemotion.training.templates``) join the training texts. The encoder and
   optimizer are checkpointed every ``checkpoint_steps`` steps; ``--resume`` continues from
   the last checkpoint (``tfemotion.training.pair_tuning``).
2. The head (``tfemotion.training.heads``) is fitted on the tuned encoder's embeddings of the
   training texts (plus ``label_prior`` times the cosine with each label's template text):
   seconds, so a resumed run fits it again. It becomes the dense layer of a
   ``SentenceClassifier``, so the saved model answers with logits like transformers'
   classifiers and is evaluated, exported, served and scored as they are.

No validation split is needed: the head's ``C`` is chosen by cross-validation on the training
embeddings, and a multi-label run without validation texts tunes its thresholds on the head's
out-of-fold probabilities. A validation split, when there is one, is evaluated and tunes the
multi-label thresholds, as in fine-tuning.

``tfemotion.training.train`` runs it (``recipe="contrastive"``, or ``"auto"`` on few texts).

Example:
    >>> plan = pair_plan(np.repeat(np.arange(6), 10), task, FinetuneConfig())
    >>> plan.sampling, plan.steps_per_epoch, plan.pairs_per_epoch  # 32 texts a step: 496 pairs
    ('in_batch', 60, 29760)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any, Optional, Sequence

import numpy as np
import tf_keras

from tfemotion.config import (LABEL_PRIOR_TEXTS, DataConfig, FinetuneConfig,
                              choose_contrastive_schedule)
from tfemotion.files import write_json
from tfemotion.runfolder import RunFolder, RunRecord, library_versions
from tfemotion.task import Task
from tfemotion.training.heads import fit_head, out_of_fold_probabilities, with_label_prior
from tfemotion.training.pair_tuning import RECIPE, pad_batch, tune_encoder
from tfemotion.training.pairs import PairPlan, in_batch_plan, oversampling_plan

logger = logging.getLogger(__name__)

# Where the multi-label thresholds and the head's C come from when there is no validation split.
NO_VALIDATION = ("none: the head's C is chosen by cross-validation on the training embeddings"
                 "{thresholds}; no validation figures")
NOT_CALIBRATED = ("none: no validation split, and the contrastive recipe holds no texts out "
                  "(raw probabilities, T = 1)")
OUT_OF_FOLD = (", and the decision thresholds are tuned on the head's out-of-fold probabilities "
               "of the training texts (optimistic: the encoder was tuned on them)")


def train_contrastive(dataset_dict: Any, data_config: DataConfig, config: FinetuneConfig,
                      run: RunFolder, task: Task, *, reason: str,
                      rows: Optional[list[dict[str, Any]]] = None,
                      callbacks: Optional[Sequence[Any]] = None,
                      verbose: Any = "auto") -> dict[str, Any]:
    """Both phases, then the run folder: model, record, metrics, evaluation.

    Called by ``tfemotion.training.train``, which checks the splits and the run folder first.

    Args:
        dataset_dict: DatasetDict. ``train`` (``validation`` and ``test`` optional).
        data_config: DataConfig. Recorded.
        config: FinetuneConfig. The model, the pairs, the schedule, the head.
        run: RunFolder. Where the run goes.
        task: Task. The data's labels and problem type.
        reason: str. Why this recipe runs (recorded).
        rows: list of dict, optional. Phase 1's completed epochs, when resuming.
        callbacks: tf_keras callbacks for phase 1's ``fit``.
        verbose: Keras ``fit`` verbosity.

    Returns:
        The metrics written to ``RUN/metrics.json`` (see ``tfemotion.training.train``), with
        ``recipe``: ``{"name", "reason", "validation", ...the record's contrastive entry}``.
    """
    from tfemotion.checkpoints import load_tokenizer, model_max_length
    from tfemotion.data import tokenize, with_targets
    from tfemotion.hardware import precision_policy, suggest_bfloat16
    from tfemotion.models import build_sentence_classifier
    from tfemotion.training.templates import with_label_texts

    _check_one_device(config)
    suggest_bfloat16(config.mixed_precision, "FinetuneConfig(mixed_precision='mixed_bfloat16') "
                     "(command line: --mixed-precision mixed_bfloat16)")
    started = time.perf_counter()
    tf_keras.utils.set_random_seed(config.seed)
    tokenizer = load_tokenizer(config.model)
    with precision_policy(config.mixed_precision):
        model = build_sentence_classifier(config.model, task)
        max_length = model_max_length(tokenizer, model.config, config.max_length)
        splits = dict(dataset_dict)
        splits["train"], templated = with_label_texts(dataset_dict["train"], task,
                                                      config.label_template,
                                                      config.template_examples)
        encoded = {name: with_targets(tokenize(split, tokenizer, max_length), task)
                   for name, split in splits.items()}
        targets = np.asarray(encoded["train"]["label"])
        plan = pair_plan(targets, task, config)
        schedule = choose_contrastive_schedule(
            config, (len(targets) - templated) / task.num_labels)
        details = {"pooling": model.pooling.to_dict(), "training_texts": len(targets),
                   "template_texts": templated, **plan.describe,
                   "steps_per_epoch": plan.steps_per_epoch}
        record = RunRecord(
            data=data_config, finetune=config, task=task, max_length=max_length,
            schedule=schedule, steps_per_epoch=plan.steps_per_epoch,
            train_examples_per_epoch=plan.pairs_per_epoch,
            versions=library_versions(), recipe=RECIPE, recipe_reason=reason,
            validation=_validation_note(encoded, task), contrastive=details)
        record.save(run)
        logger.info("Contrastive recipe on %s: %d training texts (%d from label templates), "
                    "%d pairs in %d steps per epoch (%s sampling), %s", config.model,
                    len(targets), templated, plan.pairs_per_epoch, plan.steps_per_epoch,
                    plan.sampling, schedule.reason)
        rows = tune_encoder(model, encoded["train"], plan, schedule, config, run, task,
                             tokenizer.pad_token_id or 0, list(rows or []), callbacks, verbose)
        phase1_seconds = time.perf_counter() - started
        fitted = time.perf_counter()
        embeddings = embed(model, encoded["train"], tokenizer.pad_token_id or 0,
                           config.batch_size)
        head = fit_head(embeddings, targets, task, config.head, seed=config.seed)
        prior = _prior_weight(config, templated, len(targets) - templated, task)
        if prior:
            head = with_label_prior(head, _prototypes(embeddings, targets, templated, task),
                                    prior)
        model.set_head(head.kernel, head.bias, head=head.kind)
        details.update(head=head.kind, head_c=head.c, head_note=head.note, label_prior=prior,
                       phase1_seconds=round(phase1_seconds, 2),
                       head_seconds=round(time.perf_counter() - fitted, 2))
        record = dataclasses.replace(record, contrastive=details)
        record, fit, logits = _calibrated(record, model, tokenizer, encoded)
        if task.multi_label and "validation" not in encoded:
            record = _with_thresholds(record, embeddings, targets, head)
    seconds = time.perf_counter() - started
    return _save(run, model, tokenizer, encoded, record, rows, seconds, fit, logits)


def pair_plan(targets: np.ndarray, task: Task, config: FinetuneConfig) -> PairPlan:
    """Phase 1's batches for ``config.pair_sampling`` (``tfemotion.training.pairs``).

    Example:
        >>> plan = pair_plan(np.repeat(np.arange(6), 10), task, FinetuneConfig())
        >>> plan.sampling, plan.steps_per_epoch
        ('in_batch', 60)
    """
    if config.pair_sampling == "oversampling":
        return oversampling_plan(targets, multi_label=task.multi_label,
                                 max_pairs=config.max_pairs, batch_size=config.pair_batch_size,
                                 seed=config.seed)
    return in_batch_plan(targets, multi_label=task.multi_label,
                         texts_per_step=config.texts_per_step, steps=config.contrastive_steps,
                         seed=config.seed)


def embed(model: Any, encoded: Any, pad_id: int, batch_size: int = 64) -> np.ndarray:
    """The model's pooled (normalized) vectors of a tokenized split, in the split's order.

    Texts run in length-sorted batches, each padded to its own longest text.

    Example:
        >>> from tfemotion.models import build_sentence_classifier
        >>> embed(build_sentence_classifier(checkpoint, task), encoded["test"], 0).shape
        (60, 32)
    """
    import tensorflow as tf

    ids = list(encoded["input_ids"])
    order = np.argsort([len(row) for row in ids], kind="stable")
    spec = [tf.TensorSpec([None, None], tf.int32)] * 2
    forward = tf.function(lambda i, m: model.embed(i, m, training=False), input_signature=spec,
                          autograph=False)
    vectors: Optional[np.ndarray] = None
    for begin in range(0, len(order), batch_size):
        rows = order[begin:begin + batch_size]
        padded, mask = pad_batch([ids[row] for row in rows], pad_id)
        batch = forward(tf.constant(padded), tf.constant(mask)).numpy()
        if vectors is None:
            vectors = np.empty((len(ids), batch.shape[1]), np.float32)
        vectors[rows] = batch
    return vectors if vectors is not None else np.zeros((0, 0), np.float32)


# region The head's prior, one device


def _prior_weight(config: FinetuneConfig, templated: int, texts: int, task: Task) -> float:
    """The label prior's weight: ``config.label_prior`` at ``LABEL_PRIOR_TEXTS`` texts per
    label, shrinking as their ratio above; 0 without template texts or for multi-label data.

    Example:
        >>> [_prior_weight(FinetuneConfig(), 12, texts, task) for texts in (24, 48, 384)]
        [20.0, 20.0, 2.5]
    """
    if not templated or task.multi_label:
        return 0.0
    per_label = texts / task.num_labels
    return round(config.label_prior * min(1.0, LABEL_PRIOR_TEXTS / max(per_label, 1e-9)), 4)


def _prototypes(embeddings: np.ndarray, targets: np.ndarray, templated: int,
                task: Task) -> np.ndarray:
    """Each label's normalized mean vector of its template texts (the last ``templated``
    rows of the training split)."""
    vectors, labels = embeddings[-templated:], targets[-templated:]
    prototypes = np.stack([vectors[labels == label].mean(axis=0)
                           for label in range(task.num_labels)])
    return prototypes / np.maximum(np.linalg.norm(prototypes, axis=1, keepdims=True), 1e-12)


def _check_one_device(config: FinetuneConfig) -> None:
    if config.strategy not in ("auto", "default"):
        raise ValueError("the contrastive recipe trains on one device (its batches are pairs of "
                         "positions in one batch of texts, which replicas cannot split); use "
                         f"strategy 'auto' or 'default'. Received: strategy={config.strategy!r}")


# endregion
# region Phase 2's aftermath: thresholds, the run folder


def _validation_note(encoded: dict[str, Any], task: Task) -> str:
    if "validation" in encoded:
        thresholds = " and tunes the decision thresholds" if task.multi_label else ""
        return (f"the validation split ({len(encoded['validation'])} texts) is evaluated"
                f"{thresholds}; the head's C is chosen by cross-validation on the training "
                "embeddings")
    return NO_VALIDATION.format(thresholds=OUT_OF_FOLD if task.multi_label else "")


def _calibrated(record: RunRecord, model: Any, tokenizer: Any, encoded: dict[str, Any]
                ) -> tuple[RunRecord, Optional[dict[str, Any]], Optional[np.ndarray]]:
    """The record calibrated on the validation split, when there is one (a multi-label run's
    thresholds tuned there too), the fit's report and the split's logits; without one, no
    temperatures: the recipe holds no texts out, and the head's out-of-fold logits are not
    those of the saved model (its label prior, a head refitted on every text)."""
    from tfemotion.evaluation.outputs import predict_logits
    from tfemotion.training.calibrate import calibrated_record

    if "validation" not in encoded:
        return dataclasses.replace(record, temperatures=None, calibration=NOT_CALIBRATED), \
            None, None
    split = encoded["validation"]
    logits = predict_logits(model, split, tokenizer, record.finetune.batch_size)
    record, fit = calibrated_record(record, logits, np.asarray(split["label"]),
                                    f"the validation split ({len(split)} texts)")
    return record, fit, logits


def _with_thresholds(record: RunRecord, embeddings: np.ndarray, targets: np.ndarray,
                     head: Any) -> RunRecord:
    """A multi-label record without validation texts: thresholds tuned out of fold."""
    from tfemotion.evaluation.thresholds import tune_thresholds

    probabilities = out_of_fold_probabilities(embeddings, targets, record.task, head,
                                              seed=record.finetune.seed)
    truth, where = targets, "out-of-fold probabilities of the training texts"
    thresholds, global_threshold = tune_thresholds(probabilities, truth)
    logger.info("Decision thresholds tuned on %s: %s (global %.2f)", where,
                dict(zip(record.task.label_names, thresholds)), global_threshold)
    return dataclasses.replace(record, thresholds=tuple(thresholds),
                               global_threshold=global_threshold)


def _save(run: RunFolder, model: Any, tokenizer: Any, encoded: dict[str, Any],
          record: RunRecord, rows: list[dict[str, Any]], seconds: float,
          fit: Optional[dict[str, Any]], logits: Optional[np.ndarray]) -> dict[str, Any]:
    """Model, tokenizer, record, evaluation of the splits there are, metrics.json."""
    from tfemotion.evaluation.evaluate import evaluate_split
    from tfemotion.evaluation.metrics import headline
    from tfemotion.training.results import calibration_summary

    model.save_pretrained(run.model)
    tokenizer.save_pretrained(str(run.model))
    record.save(run)
    task, config = record.task, record.finetune
    results = {}
    for split in ("validation", "test"):
        if split in encoded:
            out = run.root if split == "validation" else run.evaluation(split)
            results[split] = evaluate_split(
                model, tokenizer, encoded[split], task, out, batch_size=config.batch_size,
                error_examples=config.error_examples,
                title=f"Normalized confusion matrix ({split})", thresholds=record.thresholds,
                temperatures=record.temperatures,
                logits=logits if split == "validation" else None)
    pairs = float(sum(row["train_examples"] for row in rows))
    metrics = {
        "epochs": [{k: row[k] for k in ("epoch", "loss")} for row in rows],
        "best_epoch": len(rows),
        **{split: headline(result, task) for split, result in results.items()},
        "train_seconds": seconds,
        "train_examples_per_second": pairs / seconds if seconds else 0.0,
        "schedule": record.schedule.to_dict(),
        "advice": None,
        "recipe": {"name": RECIPE, "reason": record.recipe_reason,
                   "validation": record.validation, **(record.contrastive or {})},
        "calibration": calibration_summary(record, fit, results),
    }
    if task.multi_label:
        metrics.update(thresholds=dict(zip(task.label_names, record.thresholds)),
                       global_threshold=record.global_threshold)
    write_json(metrics, run.metrics)
    return metrics


# endregion
