"""What each text gets back: a label, or a multi-label model's labels, and every score."""

from __future__ import annotations

import numpy as np
import pytest

from tfemotion.prediction.results import check_texts, results
from tfemotion.task import MULTI_LABEL, Task


def test_single_label_results_name_the_most_probable_label():
    out = results(["a", "b"], np.array([[0.1, 0.9], [0.6, 0.4]]), Task(("x", "y")))
    assert [r["label"] for r in out] == ["y", "x"]
    assert out[0]["scores"] == {"x": 0.1, "y": 0.9}


def test_multi_label_results_take_the_model_s_own_decisions_when_it_has_them():
    task = Task(("x", "y", "z"), MULTI_LABEL)
    probabilities = np.array([[0.9, 0.6, 0.1]])
    assert results(["a"], probabilities, task)[0]["labels"] == ["x", "y"]
    assert results(["a"], probabilities, task, thresholds=[0.95, 0.5, 0.05])[0]["labels"] \
        == ["y", "z"]
    decided = np.array([[False, False, True]])
    assert results(["a"], probabilities, task, decisions=decided)[0]["labels"] == ["z"]


def test_check_texts_takes_one_string_and_refuses_what_is_not_text():
    assert check_texts("x") == ["x"]
    with pytest.raises(ValueError, match="at least one text"):
        check_texts([])
    with pytest.raises(TypeError, match="Received: int 3"):
        check_texts(["x", 3])
