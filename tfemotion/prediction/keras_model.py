"""Classifying texts with a saved Keras model: the run's model, or the transformers pipeline.

The task (label names, single- or multi-label) and a multi-label run's tuned thresholds come
from the run record when the model is a run folder; a bare model folder or a hub id has only its
config (``tfemotion.checkpoints.model_task``; thresholds 0.5).

Example:
    >>> model, tokenizer = load_classifier(run_dir)  # a run folder, RUN/model, or a hub id
    >>> predict_proba(model, tokenizer, ["i feel happy"]).shape
    (1, 6)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tfemotion.prediction.results import check_texts, results
from tfemotion.task import Task


def load_classifier(model_dir: str | Path) -> tuple[Any, Any]:
    """Load a saved sequence classifier and its tokenizer.

    Args:
        model_dir: str or Path. A ``save_pretrained`` folder (``RUN/model``), a run folder, the
            ``OUT`` folder of ``tfemotion run``, or a hub id.

    Returns:
        ``(model, tokenizer)``.

    Raises:
        FileNotFoundError: a local folder that holds no saved model.

    Example:
        >>> model, tokenizer = load_classifier(f"{run_dir}/model")
        >>> model.config.num_labels
        6
    """
    from tfemotion.checkpoints import is_local_path, load_tokenizer
    from tfemotion.models import load_run_model
    from tfemotion.runfolder import find_run

    path = Path(str(model_dir)).expanduser()
    if is_local_path(str(model_dir)):
        try:
            path = find_run(path).model  # a run folder (its config.json is the run record)
        except FileNotFoundError:
            if not (path / "config.json").is_file():
                raise FileNotFoundError(
                    f"{path} holds no saved model: pass a saved model folder (RUN/model), a run "
                    f"folder, the OUT folder of `tfemotion run`, or an export (BASE/NAME or "
                    f"BASE/NAME/VERSION). Received: model={str(model_dir)!r}") from None
    model_dir = str(path) if is_local_path(str(path)) else str(model_dir)
    return load_run_model(model_dir), load_tokenizer(model_dir)


def predict_proba(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 64,
                  max_length: Optional[int] = None, task: Optional[Task] = None,
                  temperatures: Optional[Sequence[float]] = None,
                  long_texts: str = "windows", stride: Optional[int] = None) -> np.ndarray:
    """Class probabilities of each text, ``[len(texts), num_labels]``, in label id order.

    Args:
        model: a transformers TF sequence classifier.
        tokenizer: its tokenizer.
        texts: sequence of str.
        batch_size: int. Texts (and at most windows) per forward pass.
        max_length: int, optional. Window length (default: the model's limit).
        task: Task, optional. Softmax (single-label) or a sigmoid per label (multi-label);
            default: read off the model's config.
        temperatures: sequence of float, optional. A run's calibration (one, or one per
            label): the probabilities of ``logits / T``, as its export answers; default
            ``T = 1`` (the model's raw probabilities).
        long_texts: str. ``windows``: a longer text is read in Hugging Face's overflowing
            windows and its logits pooled as an export pools them (mean; max for multi-label);
            ``truncate``: cut at ``max_length``.
        stride: int, optional. Tokens consecutive windows share (default: ``max_length // 8``,
            as an export's).

    Returns:
        float64 array of probabilities; each row sums to 1 (a multi-label model's rows hold one
        sigmoid per label).

    Raises:
        ValueError: no texts, or an unknown ``long_texts``. TypeError: a text that is not a
            string.

    Example:
        >>> probabilities = predict_proba(model, tokenizer, ["i feel happy", "so sad"])
        >>> probabilities.shape, probabilities.sum(axis=1).round(6).tolist()
        ((2, 6), [1.0, 1.0])
    """
    from tfemotion.checkpoints import model_max_length, model_task
    from tfemotion.evaluation.calibration import probabilities_of

    texts = check_texts(texts)
    if long_texts not in ("windows", "truncate"):
        raise ValueError("long_texts must be 'windows' or 'truncate'. "
                         f"Received: long_texts={long_texts!r}")
    task = task or model_task(model.config)
    limit = model_max_length(tokenizer, model.config, max_length)
    rows = []
    for start in range(0, len(texts), batch_size):
        chunk = texts[start:start + batch_size]
        if long_texts == "truncate":
            rows.append(_logits(model, tokenizer(chunk, padding=True, truncation=True,
                                                  max_length=limit, return_token_type_ids=False,
                                                  return_tensors="np")))
        else:
            rows.append(window_logits(model, tokenizer, chunk, limit, stride, task, batch_size))
    logits = np.concatenate(rows)
    return probabilities_of(logits, task, temperatures)


def window_logits(model: Any, tokenizer: Any, texts: list[str], max_length: int,
                  stride: Optional[int], task: Task, batch_size: int = 64) -> np.ndarray:
    """Each text's logits pooled over Hugging Face's overflowing windows, as an export pools
    them (``tfemotion.tokenizers.windows``).

    Example:
        >>> window_logits(model, tokenizer, ["i feel happy " * 40], 32, 4, task).shape
        (1, 6)
    """
    from tfemotion.tokenizers.windows import default_stride, pooling_for

    stride = default_stride(max_length) if stride is None else stride
    windows = tokenizer(texts, truncation=True, max_length=max_length, stride=stride,
                        return_overflowing_tokens=True, return_token_type_ids=False)
    text_of = np.asarray(windows["overflow_to_sample_mapping"])
    ids = windows["input_ids"]
    order = np.argsort([len(row) for row in ids], kind="stable")  # similar lengths together
    logits = np.zeros((len(ids), model.config.num_labels))
    for start in range(0, len(ids), batch_size):
        rows = order[start:start + batch_size]
        batch = tokenizer.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="np")
        logits[rows] = _logits(model, batch)
    pooled = np.zeros((len(texts), logits.shape[1]))
    for index in range(len(texts)):
        own = logits[text_of == index]
        pooled[index] = own.max(axis=0) if pooling_for(task.multi_label) == "max" \
            else own.mean(axis=0)
    return pooled


def _logits(model: Any, batch: Any) -> np.ndarray:
    return np.asarray(model(dict(batch), training=False).logits, dtype=np.float64)


def keras_predictor(model: Any, tokenizer: Any, task: Optional[Task] = None,
                    thresholds: Optional[Sequence[float]] = None,
                    max_length: Optional[int] = None,
                    temperatures: Optional[Sequence[float]] = None
                    ) -> Callable[[list[str]], list[dict]]:
    """A function from a batch of texts to results, on a loaded Keras classifier.

    Args:
        model: a transformers TF sequence classifier.
        tokenizer: its tokenizer.
        task: Task, optional. Default: read off the model's config.
        thresholds: sequence of float, optional. A multi-label task's thresholds (default 0.5).
        max_length: int, optional. Truncation length (default: the model's limit).
        temperatures: sequence of float, optional. A run's calibration (default ``T = 1``).

    Example:
        >>> classify = keras_predictor(model, tokenizer, task)
        >>> sorted(classify(["i feel happy"])[0])
        ['label', 'scores', 'text']
    """
    from tfemotion.checkpoints import model_task

    task = task or model_task(model.config)

    def classify(texts: list[str]) -> list[dict[str, Any]]:
        probabilities = predict_proba(model, tokenizer, texts, len(texts), max_length, task,
                                      temperatures)
        return results(texts, probabilities, task, thresholds=thresholds)

    return classify


def run_predictor(model_dir: Any, max_length: Optional[int] = None
                  ) -> Callable[[list[str]], list[dict]]:
    """``keras_predictor`` for a run folder (its record's task, thresholds and temperatures:
    the probabilities of its export), a bare model folder or a hub id (the model config's task,
    the raw probabilities)."""
    from tfemotion.checkpoints import is_local_path
    from tfemotion.runfolder import RunRecord, find_run

    task = thresholds = temperatures = None
    if is_local_path(str(model_dir)):
        try:
            record = RunRecord.load(find_run(Path(str(model_dir)).expanduser()))
            task, thresholds = record.task, record.thresholds
            temperatures = record.temperatures
        except (FileNotFoundError, ValueError):
            pass  # a bare model folder: its config says the task
    model, tokenizer = load_classifier(model_dir)
    return keras_predictor(model, tokenizer, task, thresholds, max_length, temperatures)


def load_pipeline(model_dir: str | Path) -> Any:
    """The transformers ``text-classification`` pipeline on a saved model, all scores returned.

    The pipeline knows nothing of a run's calibration: its scores are the model's raw
    probabilities (``predict`` on the run folder, or its export, answers calibrated ones).

    Built with ``framework="tf"``, ``top_k=None`` (every label's score, as in the book) and
    ``dtype=None`` (transformers 4.57 otherwise needs PyTorch).

    Example:
        >>> classifier = load_pipeline(f"{run_dir}/model")
        >>> len(classifier("i feel happy")[0])  # every label's score, highest first
        6
    """
    from transformers import pipeline

    model, tokenizer = load_classifier(model_dir)
    return pipeline("text-classification", model=model, tokenizer=tokenizer, framework="tf",
                    top_k=None, dtype=None)
