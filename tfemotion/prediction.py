"""Classifying new texts: with a saved model or an export, the transformers pipeline, a chart.

``predict`` takes any of these and returns each text's label and the score of every label:

* a saved model folder (``RUN/model``: ``save_pretrained`` of model and tokenizer), a run folder
  or the ``OUT`` folder of ``tfemotion run``: the Keras model, same probabilities as the
  transformers ``pipeline("text-classification", framework="tf", top_k=None)`` that
  ``load_pipeline`` builds (with ``dtype=None``: the default needs PyTorch in transformers 4.57);
* an exported SavedModel version folder (``BASE/NAME/VERSION``) or its model folder
  (``BASE/NAME``: the highest version): its raw-text signature, with TensorFlow alone (no
  transformers import), the way TensorFlow Serving would answer.

``predict_stream`` classifies an iterable of texts of any length batch by batch.

A multi-label model answers ``{"text", "labels": [every predicted label], "scores"}``: the labels
whose probability (a sigmoid) reaches the label's threshold (the run's tuned thresholds for a run
folder or an export, 0.5 for a bare model folder).

Example:
    >>> predict("runs/emotion/run", ["I saw a movie today and it was good."])  # doctest: +SKIP
    [{'text': 'I saw a movie today and it was really good.', 'label': 'joy', 'scores': {...}}]
"""

from __future__ import annotations

import json
import textwrap
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from tfemotion.signatures import (EXPORT_INFO_FILE, PREDICT, PREDICTED, PROBABILITIES, TEXT,
                                  find_export)


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
        >>> model, tokenizer = load_classifier("runs/emotion/model")  # doctest: +SKIP
    """
    from transformers import TFAutoModelForSequenceClassification

    from tfemotion.checkpoints import is_local_path, load_tf_model, load_tokenizer
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
    return (load_tf_model(TFAutoModelForSequenceClassification, model_dir),
            load_tokenizer(model_dir))


def predict_proba(model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int = 64,
                  max_length: Optional[int] = None) -> np.ndarray:
    """Class probabilities of each text, ``[len(texts), num_labels]``, in label id order.

    Args:
        model: a transformers TF sequence classifier.
        tokenizer: its tokenizer.
        texts: sequence of str.
        batch_size: int. Texts per forward pass.
        max_length: int, optional. Truncation length (default: the model's limit).

    Returns:
        float64 array of probabilities; each row sums to 1 (a multi-label model's rows hold one
        sigmoid per label).

    Raises:
        ValueError: no texts. TypeError: a text that is not a string.

    Example:
        >>> predict_proba(model, tokenizer, ["i feel happy"]).shape  # doctest: +SKIP
        (1, 6)
    """
    from tfemotion.checkpoints import model_max_length

    texts = _check_texts(texts)
    limit = model_max_length(tokenizer, model.config, max_length)
    rows = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                          max_length=limit, return_token_type_ids=False, return_tensors="np")
        logits = model(dict(batch), training=False).logits
        rows.append(np.asarray(logits, dtype=np.float64))
    logits = np.concatenate(rows)
    if _is_multi_label(model):
        from tfemotion.multilabel import sigmoid

        return sigmoid(logits)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def _is_multi_label(model: Any) -> bool:
    from tfemotion.config import HF_MULTI_LABEL

    return getattr(model.config, "problem_type", None) == HF_MULTI_LABEL


def predict(model: Any, texts: Sequence[str], *, batch_size: int = 64,
            max_length: Optional[int] = None) -> list[dict[str, Any]]:
    """Classify texts (``tfemotion predict``).

    Args:
        model: str or Path: a saved model folder, run folder, ``tfemotion run`` output folder,
            export version folder or export model folder (see the module docstring); or a
            loaded ``(model, tokenizer)`` pair; or a predictor from ``load_predictor``.
        texts: sequence of str.
        batch_size: int. Texts per forward pass.
        max_length: int, optional. Truncation length of a Keras model (default: the model's
            limit; an export uses its own).

    Returns:
        One dict per text: ``{"text": t, "label": best label name, "scores": {name: p, ...}}``
        with the scores in label id order; for a multi-label model ``{"text", "labels": [every
        predicted label, in label order], "scores"}``.

    Raises:
        FileNotFoundError: no model there. ValueError: no texts.

    Example:
        >>> predict("runs/emotion/model", ["i feel happy"])[0]["label"]  # doctest: +SKIP
        'joy'
    """
    texts = _check_texts(texts)
    return list(predict_stream(model, texts, batch_size=batch_size, max_length=max_length))


def predict_stream(model: Any, texts: Iterable[str], *, batch_size: int = 64,
                   max_length: Optional[int] = None) -> Iterator[dict[str, Any]]:
    """Classify an iterable of texts batch by batch, yielding one result per text in order.

    Memory stays bounded by ``batch_size`` whatever the number of texts (a file of millions of
    lines streams through).

    Args:
        model: what ``predict`` takes.
        texts: iterable of str, read lazily.
        batch_size: int. Texts per forward pass.
        max_length: int, optional. As in ``predict``.

    Example:
        >>> from tfemotion.data import read_texts
        >>> for result in predict_stream("runs/emotion/run", read_texts("tweets.txt")):
        ...     print(result["label"])  # doctest: +SKIP
    """
    classify = model if callable(model) else load_predictor(model, max_length=max_length)
    iterator = iter(texts)
    while True:
        batch = list(islice(iterator, batch_size))
        if not batch:
            return
        yield from classify(_check_texts(batch))


def load_predictor(model: Any, *, max_length: Optional[int] = None,
                   ) -> Callable[[list[str]], list[dict[str, Any]]]:
    """A function from a batch of texts to results, for any model ``predict`` takes.

    Example:
        >>> classify = load_predictor("serving/models/emotion")  # doctest: +SKIP
        >>> classify(["i feel happy"])[0]["label"]  # doctest: +SKIP
        'joy'
    """
    if isinstance(model, tuple):
        return _keras_predictor(*model, max_length=max_length)
    export = find_export(model)
    if export is not None:
        return _export_predictor(export)
    return _keras_predictor(*load_classifier(model), max_length=max_length,
                            thresholds=_run_thresholds(model))


def _run_thresholds(model: Any) -> Optional[tuple[float, ...]]:
    """The tuned thresholds of a multi-label run folder (None elsewhere)."""
    from tfemotion.checkpoints import is_local_path
    from tfemotion.runfolder import RunRecord, find_run

    if not is_local_path(str(model)):
        return None
    try:
        return RunRecord.load(find_run(Path(str(model)).expanduser())).thresholds
    except (FileNotFoundError, ValueError):
        return None


def _keras_predictor(model: Any, tokenizer: Any, max_length: Optional[int] = None,
                     thresholds: Optional[Sequence[float]] = None,
                     ) -> Callable[[list[str]], list[dict[str, Any]]]:
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if _is_multi_label(model) and thresholds is None:
        from tfemotion.multilabel import DEFAULT_THRESHOLD

        thresholds = [DEFAULT_THRESHOLD] * len(names)

    def classify(texts: list[str]) -> list[dict[str, Any]]:
        probabilities = predict_proba(model, tokenizer, texts, len(texts), max_length)
        return _results(texts, probabilities, names, thresholds)

    return classify


def _export_predictor(version_dir: Path) -> Callable[[list[str]], list[dict[str, Any]]]:
    import tensorflow as tf

    info_path = version_dir / EXPORT_INFO_FILE
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    loaded = tf.saved_model.load(str(version_dir))
    if PREDICT not in loaded.signatures or not info.get("raw_text", True):
        raise ValueError(
            f"{version_dir} has no raw-text signature (its tokenizer could not be exported: "
            f"{info.get('unsupported_reason')}); classify with the run's saved model instead. "
            f"Received: model={str(version_dir)!r}")
    signature = loaded.signatures[PREDICT]
    names = list(info.get("labels") or [])

    def classify(texts: list[str]) -> list[dict[str, Any]]:
        outputs = signature(**{TEXT: tf.constant(texts, dtype=tf.string)})
        probabilities = outputs[PROBABILITIES].numpy().astype(np.float64)
        labels = names or [f"LABEL_{i}" for i in range(probabilities.shape[1])]
        if PREDICTED in outputs:  # multi-label: the export's own decisions
            return _multi_label_results(texts, probabilities, outputs[PREDICTED].numpy(), labels)
        return _results(texts, probabilities, labels)

    classify.saved_model = loaded  # type: ignore[attr-defined]  (keeps the model alive)
    return classify


def _results(texts: Sequence[str], probabilities: np.ndarray, names: Sequence[str],
             thresholds: Optional[Sequence[float]] = None) -> list[dict[str, Any]]:
    if thresholds is not None:
        from tfemotion.multilabel import predict_labels

        return _multi_label_results(texts, probabilities,
                                    predict_labels(probabilities, thresholds), names)
    return [
        {"text": text, "label": names[int(row.argmax())],
         "scores": {name: float(p) for name, p in zip(names, row)}}
        for text, row in zip(texts, probabilities)
    ]


def _multi_label_results(texts: Sequence[str], probabilities: np.ndarray, decisions: Any,
                         names: Sequence[str]) -> list[dict[str, Any]]:
    """``{"text", "labels": [the labels decided on, in label order], "scores"}`` per text."""
    return [{"text": text, "labels": [n for n, on in zip(names, flags) if on],
             "scores": {n: float(p) for n, p in zip(names, row)}}
            for text, flags, row in zip(texts, decisions, probabilities)]


def load_pipeline(model_dir: str | Path) -> Any:
    """The transformers ``text-classification`` pipeline on a saved model, all scores returned.

    Built with ``framework="tf"``, ``top_k=None`` (every label's score, as in the book) and
    ``dtype=None`` (transformers 4.57 otherwise needs PyTorch).

    Example:
        >>> classifier = load_pipeline("runs/emotion/model")  # doctest: +SKIP
        >>> classifier("i feel happy")[0][0]["label"]  # doctest: +SKIP
        'joy'
    """
    from transformers import pipeline

    model, tokenizer = load_classifier(model_dir)
    return pipeline("text-classification", model=model, tokenizer=tokenizer, framework="tf",
                    top_k=None, dtype=None)


def plot_probabilities(prediction: dict[str, Any], path: str | Path,
                       text: Optional[str] = None) -> Path:
    """Save a bar chart of one text's class probabilities (the book's last figure) as a PNG.

    Args:
        prediction: dict. One item of ``predict``'s result (uses ``scores``; ``text`` if present).
        path: str or Path. Where to write the PNG (folders are created).
        text: str, optional. Title text (default: the prediction's ``text``).

    Returns:
        The path written.

    Raises:
        ValueError: the prediction has no scores.

    Example:
        >>> import tempfile, os
        >>> out = plot_probabilities({"scores": {"joy": 0.9, "anger": 0.1}},
        ...                          os.path.join(tempfile.mkdtemp(), "p.png"), text="hi")
        >>> out.stat().st_size > 0
        True
    """
    from tfemotion.files import new_figure, rotate_x_labels, save_figure

    scores = prediction.get("scores") if isinstance(prediction, dict) else None
    if not scores:
        raise ValueError(
            "prediction must be one item of predict(): a dict with 'scores' {label: probability}. "
            f"Received: prediction={prediction!r}"
        )
    title = text if text is not None else prediction.get("text", "")
    fig, ax = new_figure(max(5.0, 0.9 * len(scores) + 1), 4)
    names = list(scores)
    ax.bar(names, [100 * scores[n] for n in names], color="C0")
    ax.set_ylabel("Class probability (%)")
    ax.set_ylim(0, 100)
    if title:
        ax.set_title("\n".join(textwrap.wrap(f'"{title}"', 60)[:3]))
    rotate_x_labels(ax, 30)
    return save_figure(fig, path)


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise ValueError("texts must hold at least one text. Received: texts=[]")
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be strings. Received: {type(bad[0]).__name__} {bad[0]!r}")
    return texts
