"""Classifying new texts: with a run, a saved model or an export (``tfemotion predict``).

``predict`` takes any of these and returns each text's label and the score of every label:

* a run folder or the ``OUT`` folder of ``tfemotion run``: the Keras model (``tfemotion.
  prediction.keras_model``) with the run's calibration (its temperatures), the probabilities
  its export answers;
* a saved model folder (``RUN/model``: ``save_pretrained`` of model and tokenizer): the Keras
  model's raw probabilities, the same as the transformers ``pipeline("text-classification",
  framework="tf", top_k=None)`` that ``load_pipeline`` builds (with ``dtype=None``: the default
  needs PyTorch in transformers 4.57);
* an exported SavedModel version folder (``BASE/NAME/VERSION``) or its model folder
  (``BASE/NAME``: the highest version): its raw-text signature, with TensorFlow alone
  (``tfemotion.prediction.saved_model``), the way TensorFlow Serving would answer.

``predict_stream`` classifies an iterable of texts of any length batch by batch.

A multi-label model answers ``{"text", "labels": [every predicted label], "scores"}``: the labels
whose probability (a sigmoid) reaches the label's threshold (the run's tuned thresholds for a run
folder or an export, 0.5 for a bare model folder).

Example:
    >>> [result["text"] for result in predict(export_dir, ["I saw a movie today and it was good."])]
    ['I saw a movie today and it was good.']
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from tfemotion.export.signatures import find_export
from tfemotion.prediction.results import check_texts


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
        >>> predict(run_dir, ["i feel happy"])[0]["label"] in task.label_names
        True
    """
    texts = check_texts(texts)
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
        >>> import itertools
        >>> texts = itertools.repeat("i feel happy", 100)  # or read_texts("tweets.txt")
        >>> sum(1 for _ in predict_stream(export_dir, texts, batch_size=32))
        100
    """
    classify = model if callable(model) else load_predictor(model, max_length=max_length)
    iterator = iter(texts)
    while True:
        batch = list(islice(iterator, batch_size))
        if not batch:
            return
        yield from classify(check_texts(batch))


def load_predictor(model: Any, *, max_length: Optional[int] = None,
                   ) -> Callable[[list[str]], list[dict[str, Any]]]:
    """A function from a batch of texts to results, for any model ``predict`` takes.

    Example:
        >>> classify = load_predictor(export_dir)  # BASE/NAME/VERSION, or BASE/NAME
        >>> classify(["i feel happy"])[0]["label"] in task.label_names
        True
    """
    from tfemotion.prediction.keras_model import keras_predictor, run_predictor
    from tfemotion.prediction.saved_model import ExportPredictor

    if isinstance(model, tuple):
        return keras_predictor(*model, max_length=max_length)
    export = find_export(model)
    if export is not None:
        return ExportPredictor(export)
    return run_predictor(model, max_length)
