"""The task: label names and problem type, and everything that follows from them."""

from __future__ import annotations

import pytest

from tfemotion.task import MULTI_LABEL, SINGLE_LABEL, Task


def test_a_task_says_what_follows_from_it():
    single, multi = Task(("a", "b", "c")), Task(("a", "b", "c"), MULTI_LABEL)
    assert (single.num_labels, single.multi_label, single.selection_metric) == (3, False,
                                                                                "f1_weighted")
    assert single.hf_problem_type == "single_label_classification"
    assert single.headline_metrics == ("accuracy", "f1_weighted", "f1_macro")
    assert (multi.multi_label, multi.selection_metric) == (True, "f1_micro")
    assert multi.hf_problem_type == "multi_label_classification"
    assert multi.headline_metrics[0] == "f1_micro" and "hamming_loss" in multi.headline_metrics


@pytest.mark.parametrize("names, problem_type, message", [
    ((), SINGLE_LABEL, "label_names must be distinct non-empty names"),
    (("a", ""), SINGLE_LABEL, "label_names must be distinct non-empty names"),
    (("a", "a"), SINGLE_LABEL, "label_names must be distinct non-empty names"),
    (("a", "b"), "auto", "problem_type must be one of"),
])
def test_a_task_refuses_bad_names_and_problem_types(names, problem_type, message):
    with pytest.raises(ValueError, match=message):
        Task(names, problem_type)


def test_require_same_names_what_differs():
    task = Task(("a", "b"))
    task.require_same(Task(["a", "b"]), "the data")  # a list of names is the same task
    with pytest.raises(ValueError, match="the data is multi_label with labels"):
        task.require_same(Task(("a", "b"), MULTI_LABEL), "the data")


def test_multi_hot_marks_each_text_labels():
    task = Task(("a", "b", "c"), MULTI_LABEL)
    assert task.multi_hot([[2], [0, 1], []]).tolist() == [[0, 0, 1], [1, 1, 0], [0, 0, 0]]
    assert task.multi_hot([[0]]).dtype.name == "float32"


def test_records_written_before_multi_label_data_read_as_single_label():
    assert Task.from_dict({"label_names": ["x", "y"]}) == Task(("x", "y"), SINGLE_LABEL)
    assert Task.from_dict({"label_names": ["x", "y"], "problem_type": None}).problem_type \
        == SINGLE_LABEL
    assert Task.from_dict(Task(("x", "y"), MULTI_LABEL).to_dict()).multi_label
