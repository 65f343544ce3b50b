"""Folds: stratified and reproducible, bad K refused by name, the full split's recipe passed
down, an audit folder of other settings refused. Training folds: tests/audit/test_stage.py."""

from __future__ import annotations

import numpy as np
import pytest

from tfemotion.audit.folds import _check_or_write_assignment, assign_folds, fold_recipe
from tfemotion.config import FinetuneConfig
from tfemotion.task import Task

SIX = Task(("sadness", "joy", "love", "anger", "fear", "surprise"))


def test_single_label_folds_are_stratified_and_reproducible():
    labels = np.repeat(np.arange(6), [50, 40, 10, 20, 15, 5])
    folds = assign_folds(labels, SIX, 5, seed=3)
    assert sorted(np.unique(folds).tolist()) == [0, 1, 2, 3, 4]
    for fold in range(5):
        counts = np.bincount(labels[folds == fold], minlength=6)
        assert counts.tolist() == [10, 8, 2, 4, 3, 1]  # each label's share in every fold
    assert np.array_equal(folds, assign_folds(labels, SIX, 5, seed=3))
    assert not np.array_equal(folds, assign_folds(labels, SIX, 5, seed=4))


def test_multi_label_folds_split_every_text_once():
    task = Task(("a", "b"), "multi_label")
    labels = [[0], [1], [0, 1], []] * 5
    folds = assign_folds(labels, task, 4, seed=0)
    assert np.bincount(folds).tolist() == [5, 5, 5, 5]


@pytest.mark.parametrize("folds, labels, message", [
    (1, [0, 1] * 5, r"at least 2 folds. Received: folds=1"),
    (4, [0] * 10 + [1] * 3, r"label 'joy' has 3 training text\(s\): use at most 3 folds. "
                            r"Received: folds=4"),
    (5, [0, 1, 2, 3], r"more folds than training texts. Received: folds=5, texts=4"),
])
def test_a_bad_number_of_folds_is_refused_naming_why(folds, labels, message):
    with pytest.raises(ValueError, match=message):
        assign_folds(labels, SIX, folds, seed=0)


def test_the_folds_get_the_recipe_and_epochs_of_the_full_training_split():
    # 16,000 texts: fine-tuning, 250 steps an epoch, the book's 2 epochs; a fold of 4/5 of
    # them alone would get 200 steps an epoch and 3 epochs.
    settings, why = fold_recipe(FinetuneConfig(model="m", resume=True), 16000, SIX)
    assert (settings.recipe, settings.epochs, settings.resume) == ("default", 2, False)
    assert "16000 texts" in why and "2 epochs, as the full training split would get" in why
    # 450 texts (75 per label): fine-tuning; a fold of 4/5 (60 per label) alone would be
    # given the contrastive recipe.
    assert fold_recipe(FinetuneConfig(model="m"), 450, SIX)[0].recipe == "default"
    assert fold_recipe(FinetuneConfig(model="m"), 300, SIX)[0].recipe == "contrastive"
    assert fold_recipe(FinetuneConfig(model="m", epochs=3), 16000, SIX)[0].epochs == 3


def test_an_audit_folder_of_other_folds_or_settings_is_refused(tmp_path):
    path = tmp_path / "audit" / "folds.json"
    settings = FinetuneConfig(model="m", epochs=2)
    folds = np.array([0, 1, 0, 1])
    _check_or_write_assignment(path, folds, settings, 0)
    _check_or_write_assignment(path, folds, settings, 0)  # the same: resumes
    with pytest.raises(ValueError, match="other fold_of_each_text.*choose another --out"):
        _check_or_write_assignment(path, np.array([1, 0, 0, 1]), settings, 0)
    with pytest.raises(ValueError, match="other settings"):
        _check_or_write_assignment(path, folds, settings.replace(epochs=3), 0)
