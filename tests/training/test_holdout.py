"""A validation share held out of the training split."""

from __future__ import annotations

import pytest
from support import write_multi_label_dataset

from tfemotion.task import Task
from tfemotion.training.holdout import hold_out


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

