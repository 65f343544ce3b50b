"""A validation share held out of the training split, and texts made from the label names."""

from __future__ import annotations

import numpy as np
import pytest
from support import write_multi_label_dataset

from tfemotion.task import Task
from tfemotion.training.holdout import hold_out
from tfemotion.training.templates import label_texts, names_are_words, with_label_texts


def test_hold_out_keeps_every_label_on_both_sides_and_loses_no_text(emotion_splits):
    train = emotion_splits["train"]
    kept, held, note = hold_out(train, Task(tuple(train.features["label"].names)), 0.1, seed=3)
    assert len(kept) + len(held) == len(train)
    assert sorted(list(kept["text"]) + list(held["text"])) == sorted(train["text"])
    labels = set(train["label"])
    assert set(kept["label"]) == labels and set(held["label"]) == labels
    assert note.startswith(f"held out {len(held)} of the {len(train)} training texts (10%")
    with pytest.raises(ValueError, match="share must be in"):
        hold_out(train, Task(("a", "b")), 1.0)


def test_hold_out_of_multi_label_data_is_a_random_share(tmp_path):
    from support import load_data

    splits = load_data(write_multi_label_dataset(tmp_path, sizes=(40, 4, 4)))
    task = Task(tuple(splits["train"].features["label"].feature.names), "multi_label")
    kept, held, note = hold_out(splits["train"], task, 0.25)
    assert (len(kept), len(held)) == (30, 10) and "at random (multi-label)" in note


def test_label_texts_only_for_names_that_are_words(emotion_splits):
    assert names_are_words(("joy", "not sure", "l'amour")) and not names_are_words(("1", "2"))
    assert label_texts(("a b", "c"), None, 2) == [] and label_texts(("a", "b"), "{}", 0) == []
    extended, added = with_label_texts(emotion_splits["train"], Task(
        tuple(emotion_splits["train"].features["label"].names)), "This sentence is {}", 2)
    assert added == 12 and len(extended) == len(emotion_splits["train"]) + 12
    assert extended[-1]["text"] == "This sentence is surprise"
    assert np.bincount(list(extended["label"])[-12:]).tolist() == [2] * 6
