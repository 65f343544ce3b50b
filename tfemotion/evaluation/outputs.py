"""A classifier's outputs on a tokenized split: logits, probabilities, per-example losses.

Texts run in length-sorted batches, each padded to its own longest text, and come back in the
split's order. The losses are those Keras averages during training, per example, for the
book's error analysis: cross-entropy for single-label models, binary cross-entropy (averaged
over the labels) for multi-label ones.

Example:
    >>> per_example_loss(np.array([[0.0, 0.0]]), [1]).round(4).tolist()
    [0.6931]
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from tfemotion.task import DEFAULT_THRESHOLD, Task


def predict_logits(model: Any, dataset: Any, tokenizer: Any, batch_size: int = 64) -> np.ndarray:
    """Logits of a tokenized split, in the split's order, predicted in length-sorted batches.

    Texts are sorted by length and each batch is padded to its own longest text (dynamic
    padding), so short texts do not pay for long ones; the rows are put back in order after.

    Args:
        model: a transformers TF sequence classifier.
        dataset: datasets.Dataset with ``input_ids`` and ``attention_mask`` (not padded).
        tokenizer: the model's tokenizer (for the padding id).
        batch_size: int. Texts per forward pass.

    Returns:
        float32 array ``[len(dataset), num_labels]``.

    Raises:
        ValueError: the dataset is not tokenized, or is empty.

    Example:
        >>> logits = predict_logits(model, encoded["validation"], tokenizer)
        >>> logits.shape
        (60, 6)
    """
    _check_tokenized(dataset)
    order = np.argsort([len(ids) for ids in dataset["input_ids"]], kind="stable")
    tf_dataset = sorted_tf_dataset(dataset.select(order), tokenizer, batch_size)
    output = model.predict(tf_dataset, verbose=0)
    logits = np.asarray(output["logits"] if isinstance(output, dict) else output.logits)
    restored = np.empty_like(logits, dtype=np.float32)
    restored[order] = logits
    return restored


def sorted_tf_dataset(dataset: Any, tokenizer: Any, batch_size: int) -> Any:
    """A ``tf.data`` pipeline over a tokenized split in its given order, padded per batch.

    Built with ``Dataset.to_tf_dataset`` and ``DataCollatorWithPadding`` (padding to a
    multiple of 8, which keeps the number of distinct shapes small for compiled functions).

    Example:
        >>> batches = sorted_tf_dataset(encoded["test"], tokenizer, 16)
        >>> [batch["input_ids"].shape[0] for batch in batches]
        [16, 16, 16, 12]
    """
    from transformers import DataCollatorWithPadding

    collator = DataCollatorWithPadding(tokenizer, return_tensors="np", pad_to_multiple_of=8)
    keep = [c for c in dataset.column_names if c not in ("input_ids", "attention_mask")]
    return dataset.remove_columns(keep).to_tf_dataset(
        columns=["input_ids", "attention_mask"], batch_size=batch_size, shuffle=False,
        collate_fn=collator,
    )


def per_example_loss(logits: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Cross-entropy of each example (what ``SparseCategoricalCrossentropy(from_logits=True)``
    averages), computed stably in float64.

    Example:
        >>> per_example_loss(np.array([[0.0, 0.0]]), [1]).round(4).tolist()
        [0.6931]
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels)
    if logits.ndim != 2 or len(logits) != len(labels):
        raise ValueError(
            "logits must be [examples, classes] with one label per example. "
            f"Received: logits.shape={logits.shape}, len(labels)={len(labels)}"
        )
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return log_norm - logits[np.arange(len(labels)), labels]


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Probabilities from logits, stable for large magnitudes.

    Example:
        >>> sigmoid(np.array([0.0, 1000.0, -1000.0])).tolist()
        [0.5, 1.0, 0.0]
    """
    logits = np.asarray(logits, dtype=np.float64)
    return np.where(logits >= 0, 1 / (1 + np.exp(-np.abs(logits))),
                    np.exp(-np.abs(logits)) / (1 + np.exp(-np.abs(logits))))


def per_example_bce(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of each example, averaged over its labels (what
    ``BinaryCrossentropy(from_logits=True)`` averages), computed stably in float64.

    Example:
        >>> per_example_bce(np.array([[0.0, 0.0]]), np.array([[1.0, 0.0]])).round(4).tolist()
        [0.6931]
    """
    logits = np.asarray(logits, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if logits.shape != targets.shape or logits.ndim != 2:
        raise ValueError("logits and targets must both be [examples, labels]. Received: "
                         f"logits.shape={logits.shape}, targets.shape={targets.shape}")
    losses = np.maximum(logits, 0) - logits * targets + np.log1p(np.exp(-np.abs(logits)))
    return losses.mean(axis=1)


def loss_and_predictions(model: Any, dataset: Any, tokenizer: Any, task: Task,
                         batch_size: int = 64,
                         thresholds: Optional[Sequence[float]] = None,
                         temperatures: Optional[Sequence[float]] = None,
                         logits: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """Per-example loss and prediction of a tokenized, labelled split, computed in batches.

    This is the book's error analysis (``forward_pass_with_label``) for a Keras model.

    Args:
        model: a transformers TF sequence classifier.
        dataset: datasets.Dataset with ``input_ids``, ``attention_mask`` and ``label`` (the
            targets of ``task``: ids, or multi-hot vectors; see ``tfemotion.data.with_targets``).
        tokenizer: the model's tokenizer.
        task: Task. Softmax and cross-entropy (single-label), or sigmoids and binary
            cross-entropy (multi-label).
        batch_size: int. Texts per forward pass.
        thresholds: sequence of float, optional. A multi-label model's decision threshold per
            label (default 0.5 each).
        temperatures: sequence of float, optional. The run's calibration: the probabilities
            (and a multi-label model's decisions) are those of ``logits / T``; default ``T = 1``.
        logits: ``[n, k]``, optional. The model's logits on ``dataset`` when already computed
            (no forward pass then).

    Returns:
        ``{"logits": [n, k], "probabilities": [n, k], "loss": [n], "predicted"}`` as numpy
        arrays; ``logits`` are the raw ones, ``loss`` the training loss of the raw logits,
        ``probabilities`` those at the temperatures; ``predicted`` holds label ids ``[n]``
        (single-label, the same at any temperature) or, for a multi-label task, a boolean
        ``[n, k]``: each probability against its label's threshold.

    Example:
        >>> out = loss_and_predictions(model, encoded["validation"], tokenizer, task)
        >>> out["loss"].shape, out["predicted"].shape
        ((60,), (60,))
    """
    if "label" not in dataset.column_names:
        raise ValueError(
            f"dataset needs a 'label' column. Received: columns={dataset.column_names}")
    from tfemotion.evaluation.calibration import probabilities_of

    if logits is None:
        logits = predict_logits(model, dataset, tokenizer, batch_size)
    targets = np.asarray(dataset["label"])
    probabilities = probabilities_of(logits, task, temperatures)
    if task.multi_label:
        from tfemotion.evaluation.thresholds import predict_labels

        cut = [DEFAULT_THRESHOLD] * task.num_labels if thresholds is None else thresholds
        return {"logits": logits, "probabilities": probabilities,
                "loss": per_example_bce(logits, targets),
                "predicted": predict_labels(probabilities, cut)}
    return {"logits": logits, "probabilities": probabilities,
            "loss": per_example_loss(logits, targets), "predicted": logits.argmax(axis=1)}


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities of each row of logits (float64), stable for large magnitudes.

    Example:
        >>> softmax(np.array([[0.0, 0.0], [1000.0, 0.0]])).tolist()
        [[0.5, 0.5], [1.0, 0.0]]
    """
    logits = np.asarray(logits, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _check_tokenized(dataset: Any) -> None:
    missing = [c for c in ("input_ids", "attention_mask") if c not in dataset.column_names]
    if missing or len(dataset) == 0:
        raise ValueError(
            "dataset must be a non-empty tokenized split (see tfemotion.data.tokenize). "
            f"Received: columns={dataset.column_names}, rows={len(dataset)}"
        )
