"""The head of a sentence classifier, fitted on the encoder's embeddings of the training texts.

``fit_head`` returns the head as a dense layer's weights (``kernel [hidden, labels]``, ``bias
[labels]``) whose logits give the fitted classifier's probabilities through softmax
(single-label) or a sigmoid per label (multi-label, one-vs-rest), so that the saved model, its
export and every reader of logits need nothing of scikit-learn:

- ``logistic_regression``: scikit-learn's ``LogisticRegression`` as SetFit fits it, with its
  inverse regularisation ``C`` chosen by stratified cross-validation on the training
  embeddings (log loss over ``C_GRID``) when every label has at least two texts;
- ``dense``: a Keras dense layer trained with the task's loss on the frozen embeddings.

``out_of_fold_probabilities`` gives each training text the probabilities of a head fitted
without it: what a multi-label run tunes its thresholds on when the data has no validation
split.

Example:
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(-1, 0.3, (6, 4)), rng.normal(1, 0.3, (6, 4))])
    >>> fit = fit_head(x, np.repeat([0, 1], 6), Task(("a", "b")))
    >>> fit.kernel.shape, fit.bias.shape, fit.kind
    ((4, 2), (2,), 'logistic_regression')
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Optional

import numpy as np

from tfemotion.task import Task

logger = logging.getLogger(__name__)

HEADS = ("logistic_regression", "dense")
# Candidate inverse regularisation strengths of the logistic regression (SetFit's default: 1).
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
DEFAULT_C = 1.0
MAX_FOLDS = 5
# A label the training texts always (or never) carry gets a constant logit of this size.
CONSTANT_LOGIT = 9.0


@dataclass(frozen=True)
class HeadFit:
    """A fitted head as dense weights, and how it was fitted.

    Attributes:
        kernel: float32 ``[hidden, labels]``.
        bias: float32 ``[labels]``.
        kind: str. One of ``HEADS``.
        c: float or None. The logistic regression's ``C``.
        note: str. How ``C`` (or the dense head's training) was chosen, for the record.
    """

    kernel: np.ndarray
    bias: np.ndarray
    kind: str
    c: Optional[float]
    note: str

    def logits(self, embeddings: np.ndarray) -> np.ndarray:
        """The head's logits on ``embeddings`` (what the dense layer computes)."""
        return np.asarray(embeddings, np.float64) @ self.kernel + self.bias


def fit_head(embeddings: np.ndarray, targets: np.ndarray, task: Task,
             kind: str = "logistic_regression", seed: int = 42,
             c: Optional[float] = None) -> HeadFit:
    """Fit the head of ``kind`` on ``embeddings`` and their ``targets``.

    Args:
        embeddings: float ``[texts, hidden]``.
        targets: label ids ``[texts]`` or, for a multi-label task, multi-hot ``[texts, labels]``.
        task: Task. Softmax over the labels, or one sigmoid per label.
        kind: str. ``logistic_regression`` or ``dense``.
        seed: int. Folds of the cross-validation; the dense head's initialisation.
        c: float, optional. The logistic regression's ``C``; default chosen by cross-validation.

    Returns:
        A ``HeadFit``.

    Raises:
        ValueError: an unknown ``kind``, or targets that do not fit the task.
    """
    from threadpoolctl import threadpool_limits

    if kind not in HEADS:
        raise ValueError(f"kind must be one of {HEADS}. Received: kind={kind!r}")
    embeddings = np.asarray(embeddings, np.float64)
    targets = np.asarray(targets)
    _check_targets(targets, task, len(embeddings))
    if kind == "dense":
        return _fit_dense(embeddings, targets, task, seed)
    # Small problems: one BLAS thread each is faster, and many times faster on a busy machine.
    with threadpool_limits(1):
        if c is None:
            c, note = _choose_c(embeddings, targets, task, seed)
        else:
            note = f"C={c:g} as given"
        kernel, bias = _logistic_weights(embeddings, targets, task, c)
    return HeadFit(kernel, bias, kind, float(c), note)


def with_label_prior(fit: HeadFit, prototypes: np.ndarray, weight: float) -> HeadFit:
    """The head plus ``weight`` times each text's cosine with its label's prototype.

    A prototype is the tuned encoder's vector of the label's template text ("This sentence is
    joy"): what the label's name means, which few examples cannot pin down. Since the vectors
    are normalized, the cosine is a dot product and the sum stays one dense layer.

    Args:
        fit: HeadFit. The fitted head.
        prototypes: float ``[labels, hidden]``, normalized.
        weight: float. How many logits a cosine of 1 is worth (0: ``fit`` unchanged).

    Example:
        >>> fit = HeadFit(np.zeros((2, 2), np.float32), np.zeros(2, np.float32), "dense", None, "")
        >>> with_label_prior(fit, np.eye(2), 20.0).logits(np.array([[0.6, 0.8]])).tolist()
        [[12.0, 16.0]]
    """
    if not weight:
        return fit
    kernel = fit.kernel + float(weight) * np.asarray(prototypes, np.float32).T
    note = f"{fit.note}; plus {weight:g} x the cosine with each label's template text"
    return HeadFit(kernel.astype(np.float32), fit.bias, fit.kind, fit.c, note)


def out_of_fold_probabilities(embeddings: np.ndarray, targets: np.ndarray, task: Task,
                              fit: HeadFit, seed: int = 42) -> np.ndarray:
    """Each text's probabilities from a head of ``fit``'s kind and ``C`` fitted without it.

    Folds: ``min(5, texts)`` (shuffled with ``seed``), so every text is predicted once.

    Returns:
        float64 ``[texts, labels]``: softmax rows, or a sigmoid per label.

    Example:
        >>> x = np.random.default_rng(0).normal(size=(10, 3))
        >>> y = np.array([[1, 0], [0, 1]] * 5)
        >>> task = Task(("a", "b"), "multi_label")
        >>> out_of_fold_probabilities(x, y, task, fit_head(x, y, task, c=1.0)).shape
        (10, 2)
    """
    from sklearn.model_selection import KFold
    from threadpoolctl import threadpool_limits

    embeddings, targets = np.asarray(embeddings, np.float64), np.asarray(targets)
    folds = KFold(min(MAX_FOLDS, len(embeddings)), shuffle=True, random_state=seed)
    logits = np.zeros((len(embeddings), task.num_labels))
    for kept, held in folds.split(embeddings):
        if fit.kind == "dense":
            fold = _fit_dense(embeddings[kept], targets[kept], task, seed)
        else:
            with threadpool_limits(1):
                kernel, bias = _logistic_weights(embeddings[kept], targets[kept], task, fit.c)
            fold = HeadFit(kernel, bias, fit.kind, fit.c, "")
        logits[held] = fold.logits(embeddings[held])
    return _probabilities(logits, task)


def _check_targets(targets: np.ndarray, task: Task, texts: int) -> None:
    shape = (texts, task.num_labels) if task.multi_label else (texts,)
    if targets.shape != shape:
        raise ValueError(f"targets must have shape {shape} for a {task.problem_type} task. "
                         f"Received: targets.shape={targets.shape}")


def _choose_c(embeddings: np.ndarray, targets: np.ndarray, task: Task,
              seed: int) -> tuple[float, str]:
    """``C`` of ``C_GRID`` with the lowest cross-validated log loss (``DEFAULT_C`` when some
    label has fewer than two texts of each kind)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    if task.multi_label:  # the rarer side of each label: carried or not
        carried = (targets > 0.5).sum(axis=0)
        smallest = int(np.minimum(carried, len(targets) - carried).min())
    else:
        smallest = int(np.bincount(targets, minlength=task.num_labels).min())
    if smallest < 2:
        return DEFAULT_C, (f"C={DEFAULT_C:g} (SetFit's default): too few texts of some label "
                           "to cross-validate")
    folds = min(MAX_FOLDS, smallest)
    splitter = (KFold(folds, shuffle=True, random_state=seed) if task.multi_label
                else StratifiedKFold(folds, shuffle=True, random_state=seed))
    losses = np.zeros(len(C_GRID))
    for kept, held in splitter.split(embeddings, None if task.multi_label else targets):
        for index, c in enumerate(C_GRID):
            kernel, bias = _logistic_weights(embeddings[kept], targets[kept], task, c)
            probabilities = _probabilities(embeddings[held] @ kernel + bias, task)
            losses[index] += _log_loss(probabilities, targets[held], task)
    best = float(C_GRID[int(np.argmin(losses))])
    return best, f"C={best:g}, by {folds}-fold cross-validation on the training embeddings"


def _logistic_weights(embeddings: np.ndarray, targets: np.ndarray, task: Task,
                      c: float) -> tuple[np.ndarray, np.ndarray]:
    """Dense weights of scikit-learn logistic regression(s) fitted at ``C=c``."""
    from sklearn.linear_model import LogisticRegression

    width = embeddings.shape[1]
    kernel = np.zeros((width, task.num_labels), np.float64)
    bias = np.zeros(task.num_labels, np.float64)
    if task.multi_label:
        for label in range(task.num_labels):
            column = np.asarray(targets[:, label] > 0.5, np.int64)
            if column.min() == column.max():  # always or never: a constant decision
                bias[label] = CONSTANT_LOGIT if column[0] else -CONSTANT_LOGIT
                continue
            model = LogisticRegression(C=c, max_iter=1000).fit(embeddings, column)
            kernel[:, label], bias[label] = model.coef_[0], model.intercept_[0]
        return kernel.astype(np.float32), bias.astype(np.float32)
    present = np.unique(targets)
    if len(present) == 1:  # one label only: it always wins
        bias[:] = -CONSTANT_LOGIT
        bias[int(present[0])] = CONSTANT_LOGIT
        return kernel.astype(np.float32), bias.astype(np.float32)
    model = LogisticRegression(C=c, max_iter=1000).fit(embeddings, targets)
    classes = model.classes_.astype(np.int64)
    if len(classes) == 2:  # one row of coefficients: logits (0, z) give the same softmax
        kernel[:, classes[1]], bias[classes[1]] = model.coef_[0], model.intercept_[0]
    else:
        kernel[:, classes], bias[classes] = model.coef_.T, model.intercept_
    absent = np.setdiff1d(np.arange(task.num_labels), classes)
    bias[absent] = -CONSTANT_LOGIT  # labels no training text carries: never predicted
    return kernel.astype(np.float32), bias.astype(np.float32)


def _fit_dense(embeddings: np.ndarray, targets: np.ndarray, task: Task, seed: int) -> HeadFit:
    """A Keras dense layer trained on the frozen embeddings (SetFit's differentiable head:
    Adam at 1e-2, 16 epochs of batches of 2... here batches of 16)."""
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    layer = tf_keras.layers.Dense(task.num_labels)
    model = tf_keras.Sequential([tf_keras.Input((embeddings.shape[1],)), layer])
    loss = (tf_keras.losses.BinaryCrossentropy(from_logits=True) if task.multi_label
            else tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2), loss=loss)
    epochs = 16
    model.fit(embeddings.astype(np.float32), np.asarray(targets, np.float32), epochs=epochs,
              batch_size=16, shuffle=True, verbose=0)
    kernel, bias = layer.get_weights()
    return HeadFit(kernel, bias, "dense", None, f"Keras dense layer, Adam 1e-2, {epochs} epochs")


def _probabilities(logits: np.ndarray, task: Task) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    if task.multi_label:
        return 1.0 / (1.0 + np.exp(-logits))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _log_loss(probabilities: np.ndarray, targets: np.ndarray, task: Task) -> float:
    clipped = np.clip(probabilities, 1e-12, 1 - 1e-12)
    if task.multi_label:
        return float(-(targets * np.log(clipped) + (1 - targets) * np.log(1 - clipped)).sum())
    return float(-np.log(clipped[np.arange(len(targets)), targets]).sum())
