"""The callbacks of fine-tuning: validation figures in every epoch's logs, checkpoints, the NaN
stop, the learning rate of a schedule."""

from __future__ import annotations

import numpy as np
import pytest
import tf_keras

from tfemotion.data import task_of, tokenize
from tfemotion.runfolder import RunFolder, completed_epochs
from tfemotion.training.callbacks import (EpochKeeper, NaNGuard, ValidationMetrics,
                                          current_learning_rate, epoch_checkpoint)

# The callbacks are tested in training runs: not in `make check`.
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fitted(emotion_splits, tiny_bert_dir, tmp_path_factory):
    """Two epochs of a few steps with the validation callback and the epoch keeper."""
    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.config import FinetuneConfig, choose_schedule
    from tfemotion.training import build_classifier, compile_classifier, train_dataset

    task = task_of(emotion_splits)
    tokenizer = load_tokenizer(str(tiny_bert_dir))
    encoded = tokenize(emotion_splits, tokenizer, 64)
    config = FinetuneConfig(model=str(tiny_bert_dir), batch_size=16, learning_rate=1e-3)
    model = build_classifier(str(tiny_bert_dir), task)
    compile_classifier(model, choose_schedule(config, 32), config, 6, task)
    data = train_dataset(encoded["train"], tokenizer, config, 64)
    validation = ValidationMetrics(encoded["validation"], tokenizer, task, 16,
                                   train_examples=48)
    work = RunFolder(tmp_path_factory.mktemp("callbacks"))
    keeper = EpochKeeper(validation, epoch_checkpoint(model), work, task)
    history = model.fit(data.dataset, epochs=2, steps_per_epoch=3,
                        callbacks=[validation, keeper], verbose=0)
    return history, validation, work, model


def test_validation_figures_reach_keras_history_and_the_rows(fitted):
    history, validation, _, _ = fitted
    assert [row["epoch"] for row in validation.rows] == [1, 2]
    for key in ("val_loss", "val_accuracy", "val_f1_weighted"):
        assert history.history[key] == [row[key] for row in validation.rows]
    assert all(row["train_examples"] == 48 and row["train_seconds"] > 0
               for row in validation.rows)
    assert "val_f1_micro" not in validation.rows[0]  # a single-label task


def test_every_validated_epoch_leaves_a_checkpoint_and_the_history(fitted):
    _, validation, work, _ = fitted
    assert completed_epochs(work) == validation.rows
    assert all(work.checkpoint(epoch).with_suffix(".index").exists() for epoch in (1, 2))
    assert work.history.read_text().count("\n") == 3  # header and two epochs


def test_the_learning_rate_of_a_schedule_is_read_at_the_current_step(fitted):
    _, validation, _, model = fitted
    rate = current_learning_rate(model.optimizer)
    assert rate == pytest.approx(validation.rows[-1]["learning_rate"])
    assert rate < 1e-3  # the linear decay has started


def test_the_nan_guard_stops_at_the_first_non_finite_loss_and_remembers_where():
    guard = NaNGuard()
    guard.set_model(tf_keras.Sequential())
    guard.on_epoch_begin(2)
    guard.on_train_batch_end(0, {"loss": 0.5})
    guard.on_train_batch_end(1, {"loss": float("nan")})
    guard.on_train_batch_end(2, {"loss": np.inf})
    assert guard.tripped == (3, 2) and guard.model.stop_training
