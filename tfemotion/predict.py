"""Classifying new texts with a saved model: probabilities, the transformers pipeline, a chart.

A run's ``RUN/model/`` folder (``save_pretrained`` of model and tokenizer, label names in its
config) is all that is needed. ``predict`` gives the same probabilities as the transformers
``pipeline("text-classification", framework="tf", top_k=None)`` on that folder, which
``load_pipeline`` builds (with ``dtype=None``: the default ``"auto"`` needs PyTorch in
transformers 4.57).

Example:
    >>> predict("runs/emotion/model", ["I saw a movie today and it was good."])  # doctest: +SKIP
    [{'text': 'I saw a movie today and it was really good.', 'label': 'joy', 'scores': {...}}]
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np


def load_classifier(model_dir: str | Path) -> tuple[Any, Any]:
    """Load a saved sequence classifier and its tokenizer.

    Args:
        model_dir: str or Path. A ``save_pretrained`` folder (``RUN/model``) or hub id.

    Returns:
        ``(model, tokenizer)``.

    Raises:
        FileNotFoundError: a local folder without ``config.json``.

    Example:
        >>> model, tokenizer = load_classifier("runs/emotion/model")  # doctest: +SKIP
    """
    from transformers import TFAutoModelForSequenceClassification

    from tfemotion.checkpoints import is_local_path, load_tf_model, load_tokenizer

    path = Path(str(model_dir)).expanduser()
    if is_local_path(str(model_dir)) and not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} holds no saved model (no config.json); pass RUN/model from `tfemotion train`. "
            f"Received: model_dir={str(model_dir)!r}"
        )
    return (load_tf_model(TFAutoModelForSequenceClassification, str(model_dir)),
            load_tokenizer(str(model_dir)))


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
        float64 array of probabilities; each row sums to 1.

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
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def predict(model_dir: str | Path, texts: Sequence[str], *, batch_size: int = 64,
            max_length: Optional[int] = None) -> list[dict[str, Any]]:
    """Classify texts with a saved model (``tfemotion predict``).

    Args:
        model_dir: str or Path. ``RUN/model`` (or a loaded ``(model, tokenizer)`` pair).
        texts: sequence of str.
        batch_size: int. Texts per forward pass.
        max_length: int, optional. Truncation length (default: the model's limit).

    Returns:
        One dict per text: ``{"text": t, "label": best label name, "scores": {name: p, ...}}``
        with the scores in label id order.

    Raises:
        FileNotFoundError: no saved model there. ValueError: no texts.

    Example:
        >>> predict("runs/emotion/model", ["i feel happy"])[0]["label"]  # doctest: +SKIP
        'joy'
    """
    model, tokenizer = model_dir if isinstance(model_dir, tuple) else load_classifier(model_dir)
    probabilities = predict_proba(model, tokenizer, texts, batch_size, max_length)
    names = [model.config.id2label[i] for i in range(probabilities.shape[1])]
    return [
        {"text": text, "label": names[int(row.argmax())],
         "scores": {name: float(p) for name, p in zip(names, row)}}
        for text, row in zip(texts, probabilities)
    ]


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
