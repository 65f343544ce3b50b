"""What ``predict`` answers for each text, whatever model gave the probabilities.

A single-label task answers ``{"text", "label", "scores"}`` (the most probable label, and every
label's probability in label order); a multi-label task ``{"text", "labels", "scores"}`` (every
label whose probability reaches its threshold, in label order).

Example:
    >>> import numpy as np
    >>> results(["wow"], np.array([[0.2, 0.8]]), Task(("anger", "joy")))
    [{'text': 'wow', 'label': 'joy', 'scores': {'anger': 0.2, 'joy': 0.8}}]
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from tfemotion.task import DEFAULT_THRESHOLD, Task


def results(texts: Sequence[str], probabilities: np.ndarray, task: Task,
            decisions: Optional[np.ndarray] = None,
            thresholds: Optional[Sequence[float]] = None) -> list[dict[str, Any]]:
    """One result per text.

    Args:
        texts: sequence of str.
        probabilities: ``[texts, labels]`` array.
        task: Task. Single- or multi-label, and the label names.
        decisions: boolean ``[texts, labels]``, optional. A multi-label model's own decisions
            (an export's ``predicted``); default: ``probabilities >= thresholds``.
        thresholds: sequence of float, optional. A multi-label task's thresholds (default 0.5).

    Example:
        >>> from tfemotion.task import MULTI_LABEL
        >>> results(["wow"], np.array([[0.6, 0.7]]), Task(("joy", "fear"), MULTI_LABEL),
        ...         thresholds=[0.5, 0.75])[0]["labels"]
        ['joy']
    """
    names = task.label_names
    if not task.multi_label:
        return [{"text": text, "label": names[int(row.argmax())],
                 "scores": {name: float(p) for name, p in zip(names, row)}}
                for text, row in zip(texts, probabilities)]
    if decisions is None:
        cut = [DEFAULT_THRESHOLD] * task.num_labels if thresholds is None else thresholds
        decisions = np.asarray(probabilities) >= np.asarray(cut, dtype=np.float64)
    return [{"text": text, "labels": [n for n, on in zip(names, flags) if on],
             "scores": {n: float(p) for n, p in zip(names, row)}}
            for text, flags, row in zip(texts, decisions, probabilities)]


def check_texts(texts: Any) -> list[str]:
    """The texts as a list of strings; a lone string is one text.

    Raises:
        ValueError: no texts. TypeError: a text that is not a string.

    Example:
        >>> check_texts("i feel fine")
        ['i feel fine']
    """
    if isinstance(texts, str):
        texts = [texts]
    texts = list(texts)
    if not texts:
        raise ValueError("texts must hold at least one text. Received: texts=[]")
    bad = [t for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must be strings. Received: {type(bad[0]).__name__} {bad[0]!r}")
    return texts
