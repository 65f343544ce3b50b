"""The task of loaded splits, token ids without padding, the targets a model learns from."""

from __future__ import annotations

import pytest
from support import load_data

from tfemotion.config import EMOTION_LABELS
from tfemotion.data import task_of, to_dataframe, tokenize, with_targets
from tfemotion.task import MULTI_LABEL, SINGLE_LABEL, Task


def test_task_of_reads_the_label_names_and_whether_labels_are_lists(emotion_splits,
                                                                   multi_label_dir):
    assert task_of(emotion_splits) == Task(EMOTION_LABELS, SINGLE_LABEL)
    multi = task_of(load_data(multi_label_dir))
    assert multi.problem_type == MULTI_LABEL and set(multi.label_names) == set(EMOTION_LABELS)


def test_task_of_refuses_a_label_column_without_names():
    from datasets import Dataset, DatasetDict

    with pytest.raises(ValueError, match="must be a ClassLabel with names"):
        task_of(DatasetDict({"train": Dataset.from_dict({"text": ["a"], "label": [0]})}))
    with pytest.raises(ValueError, match="no split"):
        task_of({})


def test_with_targets_makes_multi_hot_vectors_only_for_multi_label_tasks(emotion_splits,
                                                                        multi_label_dir):
    assert with_targets(emotion_splits["validation"], task_of(emotion_splits)) \
        is emotion_splits["validation"]
    splits = load_data(multi_label_dir)
    task = task_of(splits)
    targets = with_targets(splits["validation"], task)
    for ids, vector in zip(splits["validation"]["label"], targets["label"]):
        assert vector == [1.0 if i in ids else 0.0 for i in range(task.num_labels)]


def test_to_dataframe_adds_label_names(emotion_splits, multi_label_dir):
    frame = to_dataframe(emotion_splits["validation"])
    assert list(frame.columns) == ["text", "label", "label_name"]
    assert all(EMOTION_LABELS[i] == n for i, n in zip(frame["label"], frame["label_name"]))
    splits = load_data(multi_label_dir)
    names = task_of(splits).label_names
    frame = to_dataframe(splits["test"], task_of(splits))
    assert [[names[i] for i in ids] for ids in frame["label"]] == list(frame["label_name"])


def test_tokenize_truncates_without_padding(emotion_dir, tiny_bert_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert_dir))
    encoded = tokenize(load_data(emotion_dir), tokenizer, max_length=6)
    lengths = encoded["train"]["length"]
    assert max(lengths) == 6 and min(lengths) < 6  # truncated, not padded
    row = encoded["train"][0]
    assert len(row["input_ids"]) == len(row["attention_mask"]) == row["length"]
    assert row["input_ids"][0] == tokenizer.cls_token_id
    assert row["input_ids"][-1] == tokenizer.sep_token_id
