"""Texts made from the label names, added to few labelled texts (SetFit's templated data)."""

from __future__ import annotations

import numpy as np

from tfemotion.task import Task
from tfemotion.training.templates import label_texts, names_are_words, with_label_texts


def test_label_texts_only_for_names_that_are_words(emotion_splits):
    assert names_are_words(("joy", "not sure", "l'amour")) and not names_are_words(("1", "2"))
    assert label_texts(("a b", "c"), None, 2) == [] and label_texts(("a", "b"), "{}", 0) == []
    extended, added = with_label_texts(emotion_splits["train"], Task(
        tuple(emotion_splits["train"].features["label"].names)), "This sentence is {}", 2)
    assert added == 12 and len(extended) == len(emotion_splits["train"]) + 12
    assert extended[-1]["text"] == "This sentence is surprise"
    assert np.bincount(list(extended["label"])[-12:]).tolist() == [2] * 6


def test_multi_label_rows_carry_their_one_label_as_a_list(tmp_path):
    from support import load_data, write_multi_label_dataset

    splits = load_data(write_multi_label_dataset(tmp_path, sizes=(40, 4, 4)))
    names = tuple(splits["train"].features["label"].feature.names)
    extended, added = with_label_texts(splits["train"], Task(names, "multi_label"), "{}", 1)
    assert added == len(names)
    assert [row["label"] for row in extended.select(range(40, 40 + added))] == [
        [label] for label in range(len(names))]
