"""The model to fine-tune: a checkpoint's encoder with a new head for the task, compiled.

``build_classifier`` puts the task's labels (and, for multi-label tasks, transformers'
``multi_label_classification`` problem type) into the model config, so the saved model, its
pipeline and its export name the labels; ``compile_classifier`` gives it the optimizer of the
recipe, the task's loss and accuracy, all from ``tf_keras`` (Keras 2, which transformers' TF
models are built with).

Example:
    >>> classifier = build_classifier(checkpoint, Task(("neg", "pos")))
    >>> classifier.config.id2label
    {0: 'neg', 1: 'pos'}
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import tf_keras

from tfemotion.config import FinetuneConfig, Schedule
from tfemotion.task import Task


def build_classifier(checkpoint: str, task: Task) -> Any:
    """The checkpoint's encoder with a new classification head for ``task``.

    Args:
        checkpoint: str. Hub id or local folder of any BERT-, RoBERTa- or XLM-R-family checkpoint.
        task: Task. Its label names become ``id2label``/``label2id``; a multi-label task sets
            the config's ``problem_type`` to ``multi_label_classification`` (sigmoid outputs,
            as Hugging Face's pipeline reads it).

    Returns:
        A ``TFAutoModelForSequenceClassification`` model.

    Example:
        >>> from tfemotion.task import MULTI_LABEL
        >>> build_classifier(checkpoint, Task(("a", "b"), MULTI_LABEL)).config.problem_type
        'multi_label_classification'
    """
    from transformers import TFAutoModelForSequenceClassification

    from tfemotion.checkpoints import load_tf_model

    names = task.label_names
    # Single-label configs keep transformers' default (None), which means softmax too.
    extra = {"problem_type": task.hf_problem_type} if task.multi_label else {}
    return load_tf_model(
        TFAutoModelForSequenceClassification, checkpoint, num_labels=task.num_labels,
        id2label=dict(enumerate(names)), label2id={name: i for i, name in enumerate(names)},
        **extra,
    )


def start_at_label_frequencies(model: Any, targets: Any) -> Optional[np.ndarray]:
    """Set a multi-label head's output bias so that its first outputs are the labels' frequencies.

    A new head starts every sigmoid at 0.5, far above the share of texts that carry a label
    (a sixth to a third for emotions), so the first steps of binary cross-entropy go into
    pulling every output down rather than into telling the labels apart. Starting each bias at
    the logit of its label's frequency in ``targets`` (clipped to [0.001, 0.999]) skips that.
    ``benchmarks/bench_multilabel.py`` measures what it gains.

    Args:
        model: a built transformers TF sequence classifier whose last trainable variable of
            shape ``(num_labels,)`` is the output bias (BERT, DistilBERT, RoBERTa, XLM-R heads).
        targets: array-like of shape ``(examples, num_labels)``: the training split's multi-hot
            targets.

    Returns:
        The bias set, or None when the model has no such variable (it is then left as it is).

    Example:
        >>> from tfemotion.task import MULTI_LABEL
        >>> classifier = build_classifier(checkpoint, Task(("a", "b"), MULTI_LABEL))
        >>> start_at_label_frequencies(classifier, [[1, 0], [1, 1], [0, 0], [0, 0]]).round(3)
        array([ 0.   , -1.099], dtype=float32)
    """
    frequencies = np.clip(np.asarray(targets, dtype=np.float64).mean(axis=0), 1e-3, 1 - 1e-3)
    bias = next((v for v in reversed(model.trainable_variables)
                 if tuple(v.shape) == frequencies.shape), None)
    if bias is None:
        return None
    value = np.log(frequencies / (1 - frequencies)).astype(bias.dtype.as_numpy_dtype)
    bias.assign(value)
    return value


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
                       total_steps: int, task: Task) -> None:
    """``model.compile`` with the optimizer of ``config.recipe``, the task's loss and accuracy.

    ``default``: AdamW (LayerNorm weights and biases not decayed, ``config.weight_decay``) with a
    linear warm-up over ``schedule.warmup_ratio`` of the steps and a linear decay to 0.
    ``book-keras``: Adam at a constant rate. A single-label task gets
    ``SparseCategoricalCrossentropy(from_logits=True)`` and accuracy; a multi-label one
    ``BinaryCrossentropy(from_logits=True)`` over multi-hot targets and the share of label
    decisions right at probability 0.5 (``accuracy``).

    Args:
        model: a transformers TF sequence classifier.
        schedule: Schedule. From ``tfemotion.config.choose_schedule``.
        config: FinetuneConfig. ``recipe``, ``weight_decay``, ``xla``.
        total_steps: int. Optimizer steps of the whole run (epochs x steps per epoch).
        task: Task. Which loss and accuracy.

    Example:
        >>> from tfemotion.config import choose_schedule
        >>> config = FinetuneConfig(model=checkpoint)
        >>> classifier = build_classifier(checkpoint, task)
        >>> compile_classifier(classifier, choose_schedule(config, 32), config, 100, task)
        >>> type(classifier.loss).__name__
        'SparseCategoricalCrossentropy'
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
    if task.multi_label:
        loss = tf_keras.losses.BinaryCrossentropy(from_logits=True)
        accuracy = tf_keras.metrics.BinaryAccuracy(name="accuracy", threshold=0.0)  # logit 0 = p 0.5
    else:
        loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        accuracy = tf_keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    model.compile(optimizer=optimizer, loss=loss, metrics=[accuracy], jit_compile=config.xla)
