"""Texts made from the label names, added to few labelled texts (SetFit's templated data).

SetFit's ``get_templated_dataset`` writes a few texts per label from a template, "This
sentence is {}", and the label's name ("This sentence is joy"), so that the names' meaning, which
a sentence encoder already knows, joins the examples. That only makes sense when the names are
words: names such as ``LABEL_0`` or ``3`` get no texts.

Example:
    >>> label_texts(("joy", "fear"), "This sentence is {}", 1)
    [('This sentence is joy', 0), ('This sentence is fear', 1)]
    >>> label_texts(("LABEL_0", "LABEL_1"), "This sentence is {}", 2)
    []
"""

from __future__ import annotations

import re
from typing import Any, Optional

from tfemotion.task import Task

# A name that reads as one or more words: letters, with single spaces, hyphens or apostrophes.
_WORDS = re.compile(r"[^\W\d_]+(?:[ '-][^\W\d_]+)*")


def names_are_words(names: tuple[str, ...]) -> bool:
    """True when every label name reads as words (``joy``, ``not sure``), not as an id.

    Example:
        >>> names_are_words(("joy", "fear")), names_are_words(("LABEL_0", "LABEL_1"))
        (True, False)
    """
    return all(_WORDS.fullmatch(name.strip()) for name in names)


def label_texts(names: tuple[str, ...], template: Optional[str],
                per_label: int) -> list[tuple[str, int]]:
    """``per_label`` (text, label id) rows per label from ``template``; none when the names
    are not words, the template is None or ``per_label`` is 0."""
    if not template or per_label <= 0 or not names_are_words(names):
        return []
    return [(template.format(name), label) for label, name in enumerate(names)
            for _ in range(per_label)]


def with_label_texts(train: Any, task: Task, template: Optional[str],
                     per_label: int) -> tuple[Any, int]:
    """The training split with the template texts appended, and how many were added.

    Args:
        train: datasets.Dataset with ``text`` and ``label`` (ids, or lists of ids).
        task: Task. Its label names fill the template; a multi-label row carries its one label.
        template: str or None. With ``{}`` where the name goes.
        per_label: int. Texts per label.

    Returns:
        ``(dataset, added)``.

    Example:
        >>> extended, added = with_label_texts(splits["train"], task, "i feel {}", 1)
        >>> added, extended[-1]["text"]
        (6, 'i feel surprise')
    """
    from datasets import Dataset, concatenate_datasets

    rows = label_texts(task.label_names, template, per_label)
    if not rows:
        return train, 0
    base = train.select_columns(["text", "label"])
    extra = Dataset.from_dict({"text": [text for text, _ in rows],
                               "label": [[label] if task.multi_label else label
                                         for _, label in rows]}, features=base.features)
    return concatenate_datasets([base, extra]), len(rows)
