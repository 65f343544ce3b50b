"""Fine-tuning: learning, run folder, best-epoch restore, resume, NaN stop, hardware options.

A tiny 2-layer BERT learns the synthetic keyword labelling in about ten fast epochs; most tests
share one such run (``trained_run``).
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tf_keras
from conftest import write_dataset

from tfemotion.runfolder import HISTORY_COLUMNS
from tfemotion.config import DataConfig, FinetuneConfig
from tfemotion.data import load_splits, tokenize
from tfemotion.finetune import EPOCH_KEYS, NaNLossError, best_epoch, train
from tfemotion.hardware import resolve_hardware
from tfemotion.inputs import bucket_boundaries, train_dataset

EPOCHS = 10
FAST = {"learning_rate": 1e-2, "batch_size": 16, "warmup_ratio": 0.0}


class StopAfterEpoch(tf_keras.callbacks.Callback):
    """Raises at the end of an epoch, like a machine that goes away mid-run."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise KeyboardInterrupt(f"interrupted after epoch {self.epoch}")


class PoisonWeights(tf_keras.callbacks.Callback):
    """Sets the classifier's weights to NaN at the start of an epoch (1-based)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            for weight in self.model.classifier.weights:
                weight.assign(np.full(weight.shape, np.nan, dtype=np.float32))


class ZeroClassifierAtEnd(tf_keras.callbacks.Callback):
    """After the last batch of the last epoch, zero the head: that epoch predicts one class."""

    def on_train_batch_end(self, batch, logs=None):
        last_epoch = self.params["epochs"] - 1
        if self._epoch == last_epoch and batch + 1 == self.params["steps"]:
            for weight in self.model.classifier.weights:
                weight.assign(np.zeros(weight.shape, dtype=np.float32))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("finetune-data"), "txt", sizes=(240, 60, 60))


@pytest.fixture(scope="module")
def splits(data_dir):
    return load_splits(DataConfig(source=str(data_dir)))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_bert_dir, data_dir, splits):
    """Ten epochs; the last one ends with a zeroed head, so an earlier epoch must be restored."""
    run = tmp_path_factory.mktemp("trained") / "run"
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=EPOCHS, error_examples=5, **FAST)
    metrics = train(splits, DataConfig(source=str(data_dir)), config, run, verbose=0,
                    callbacks=[ZeroClassifierAtEnd()])
    return run, metrics


def read_history(run: Path) -> list[dict[str, str]]:
    with (run / "history.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


# region Learning, best epoch, run folder


def test_train_learns_keyword_labels_well_above_dummy_baseline(trained_run, splits):
    _, metrics = trained_run
    labels = splits["validation"]["label"]
    dummy_accuracy = Counter(labels).most_common(1)[0][1] / len(labels)
    assert metrics["validation"]["accuracy"] >= max(0.85, dummy_accuracy + 0.4)
    assert metrics["test"]["f1_weighted"] >= 0.8


def test_train_restores_best_epoch_by_validation_f1(trained_run):
    run, metrics = trained_run
    epochs = metrics["epochs"]
    assert len(epochs) == EPOCHS
    assert epochs[-1]["val_accuracy"] < 0.5  # the zeroed head predicts a single class
    assert metrics["best_epoch"] == best_epoch(epochs) < EPOCHS
    best = epochs[metrics["best_epoch"] - 1]
    # The saved model is the best epoch's: its validation metrics are that epoch's.
    assert metrics["validation"]["f1_weighted"] == pytest.approx(best["val_f1_weighted"], abs=1e-6)
    assert metrics["validation"]["accuracy"] == pytest.approx(best["val_accuracy"], abs=1e-6)


def test_train_writes_run_folder_with_documented_files_and_keys(trained_run):
    run, metrics = trained_run
    for name in ("config.json", "history.csv", "metrics.json", "confusion_matrix.png",
                 "errors_highest_loss.csv", "errors_lowest_loss.csv", "errors_highest_loss.md",
                 "errors_lowest_loss.md", "classification_report.csv", "model/config.json",
                 "model/tf_model.h5", "model/tokenizer.json", "checkpoints/state.json",
                 "evaluation/test/confusion_matrix.png"):
        assert (run / name).is_file(), name
    assert all((run / f"checkpoints/epoch-{k}.index").is_file() for k in range(1, EPOCHS + 1))
    assert list((run / "logs" / "train").iterdir()), "TensorBoard logs"

    saved = json.loads((run / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    assert set(saved) == {"epochs", "best_epoch", "validation", "test", "train_seconds",
                          "train_examples_per_second", "schedule", "advice"}
    assert saved["schedule"] == {"learning_rate": 1e-2, "warmup_ratio": 0.0,
                                 "reason": "learning rate 0.01 as given; warm-up 0% of the "
                                           "steps as given"}
    assert all(tuple(row) == EPOCH_KEYS for row in saved["epochs"])
    assert [row["epoch"] for row in saved["epochs"]] == list(range(1, EPOCHS + 1))
    assert set(saved["validation"]) == set(saved["test"]) == {"accuracy", "f1_weighted", "f1_macro"}
    assert saved["train_seconds"] > 0 and saved["train_examples_per_second"] > 0

    config = json.loads((run / "config.json").read_text())
    assert {"data", "finetune", "label_names", "max_length", "schedule", "versions"} <= set(config)
    assert FinetuneConfig.from_dict(config["finetune"]).epochs == EPOCHS
    assert DataConfig.from_dict(config["data"]).source
    model_config = json.loads((run / "model/config.json").read_text())
    assert model_config["id2label"] == {str(i): n for i, n in enumerate(config["label_names"])}

    history = read_history(run)
    assert tuple(history[0]) == HISTORY_COLUMNS
    assert [float(r["val_f1_weighted"]) for r in history] == [
        pytest.approx(e["val_f1_weighted"]) for e in saved["epochs"]]
    errors = list(csv.DictReader((run / "errors_highest_loss.csv").open()))
    assert len(errors) == 5 and set(errors[0]) == {"text", "label", "predicted_label", "loss"}
    losses = [float(e["loss"]) for e in errors]
    assert losses == sorted(losses, reverse=True)


def test_train_saved_model_reevaluates_to_the_same_metrics(trained_run, splits):
    from tfemotion.evaluate import evaluate_run

    run, metrics = trained_run
    result = evaluate_run(run, "test", dataset_dict=splits)
    for key in ("accuracy", "f1_weighted", "f1_macro"):
        assert result[key] == pytest.approx(metrics["test"][key], abs=1e-6)


def test_train_refuses_a_folder_that_holds_a_run(trained_run, splits, tiny_bert_dir):
    run, _ = trained_run
    with pytest.raises(FileExistsError, match="--resume"):
        train(splits, DataConfig(source="x"), FinetuneConfig(model=str(tiny_bert_dir)), run)


def test_train_resume_rejects_changed_settings(trained_run, splits, tiny_bert_dir):
    run, _ = trained_run
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=EPOCHS, resume=True,
                            error_examples=5, **{**FAST, "batch_size": 8})
    with pytest.raises(ValueError, match="batch_size"):
        train(splits, DataConfig(source="x"), config, run)


def test_train_resume_without_completed_epoch_raises(tmp_path, splits, tiny_bert_dir):
    config = FinetuneConfig(model=str(tiny_bert_dir), resume=True)
    with pytest.raises(ValueError, match="no completed epoch"):
        train(splits, DataConfig(source="x"), config, tmp_path / "run")


def test_train_rejects_splits_without_validation(splits, tiny_bert_dir, tmp_path):
    from datasets import DatasetDict

    with pytest.raises(ValueError, match="validation"):
        train(DatasetDict({"train": splits["train"]}), DataConfig(source="x"),
              FinetuneConfig(model=str(tiny_bert_dir)), tmp_path)


# endregion
# region Resume and NaN


def test_train_resume_after_interruption_ends_with_same_epochs_and_continuous_history(
        tmp_path, splits, data_dir, tiny_bert_dir):
    import tensorflow as tf

    run = tmp_path / "run"
    data_config = DataConfig(source=str(data_dir))
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=3, **FAST)
    with pytest.raises(KeyboardInterrupt):
        train(splits, data_config, config, run, verbose=0, callbacks=[StopAfterEpoch(1)])
    first = read_history(run)
    assert [r["epoch"] for r in first] == ["1"]
    assert not (run / "metrics.json").exists()

    metrics = train(splits, data_config, config.replace(resume=True), run, verbose=0)
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2, 3]
    history = read_history(run)
    assert history[0] == first[0]  # epoch 1 kept as it was
    assert [r["epoch"] for r in history] == ["1", "2", "3"]
    # The optimizer continued: its step counter counts all three epochs, and the linear decay
    # reached zero at the end as planned for three epochs.
    steps = json.loads((run / "config.json").read_text())["steps_per_epoch"]
    reader = tf.train.load_checkpoint(str(run / "checkpoints" / "epoch-3"))
    iterations = [reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
                  if k.startswith("optimizer/iter")]
    assert iterations == [3 * steps]
    assert float(history[-1]["learning_rate"]) == pytest.approx(0.0, abs=1e-9)
    assert float(history[0]["learning_rate"]) == pytest.approx(FAST["learning_rate"] * 2 / 3,
                                                               rel=1e-4)


def test_train_stops_on_nan_loss_and_keeps_last_good_checkpoint(tmp_path, splits, tiny_bert_dir):
    run = tmp_path / "run"
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=3, **FAST)
    with pytest.raises(NaNLossError, match=r"NaN at epoch 2, step 1.*epoch 1"):
        train(splits, DataConfig(source="x"), config, run, verbose=0, callbacks=[PoisonWeights(2)])
    assert (run / "checkpoints" / "epoch-1.index").is_file()
    assert not (run / "checkpoints" / "epoch-2.index").exists()
    assert [r["epoch"] for r in read_history(run)] == ["1"]
    assert np.isfinite(float(read_history(run)[0]["loss"]))
    assert not (run / "metrics.json").exists() and not (run / "model").exists()


# endregion
# region Input pipeline and recipes


@pytest.fixture(scope="module")
def encoded_train(splits, tiny_bert_dir):
    from tfemotion.checkpoints import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_bert_dir))
    return tokenize(splits, tokenizer, 64)["train"], tokenizer


def _one_epoch(data):
    return [(x["input_ids"].numpy(), x["attention_mask"].numpy(), y.numpy())
            for x, y in data.dataset.take(data.steps)]


def test_train_dataset_batches_similar_lengths_padded_per_batch(encoded_train):
    encoded, tokenizer = encoded_train
    data = train_dataset(encoded, tokenizer, FinetuneConfig(batch_size=16, seed=1), 64)
    first, second = _one_epoch(data), _one_epoch(data)
    lengths = np.asarray(encoded["length"])
    for epoch in (first, second):
        real = sorted(int(n) for ids, mask, _ in epoch for n in mask.sum(axis=1))
        assert real == sorted(lengths.tolist())  # every example exactly once per epoch
        for ids, mask, _ in epoch:
            width = ids.shape[1]
            assert width % 8 == 0 and width - mask.sum(axis=1).max() < 8  # padded to the bucket
            assert (ids[mask == 0] == tokenizer.pad_token_id).all()
    assert data.examples == len(encoded)
    assert data.padded_tokens == sum(ids.size for ids, _, _ in first)
    assert data.real_tokens == lengths.sum()
    order = [tuple(y) for _, _, y in first]
    assert order != [tuple(y) for _, _, y in second]  # reshuffled between epochs


def test_train_dataset_book_keras_pads_every_text_to_the_longest(encoded_train):
    encoded, tokenizer = encoded_train
    data = train_dataset(encoded, tokenizer, FinetuneConfig(recipe="book-keras", batch_size=16), 64)
    widths = {ids.shape[1] for ids, _, _ in _one_epoch(data)}
    assert widths == {max(encoded["length"])}
    assert data.steps == len(encoded) // 16 + (len(encoded) % 16 > 0)


def test_bucket_boundaries_cover_the_longest_text():
    assert bucket_boundaries(8) == [9]
    assert bucket_boundaries(9) == [9, 17]


def test_train_book_keras_recipe_on_a_safetensors_only_checkpoint(
        tmp_path, splits, encoded_train, tiny_distilbert_safetensors_dir):
    config = FinetuneConfig(model=str(tiny_distilbert_safetensors_dir), epochs=1,
                            recipe="book-keras", batch_size=32)
    metrics = train(splits, DataConfig(source="x"), config, tmp_path / "run", verbose=0)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    lengths = np.asarray(encoded_train[0]["length"])  # same vocab, same token counts
    assert saved["finetune"]["learning_rate"] is None  # not given: the recipe's own
    assert saved["schedule"]["learning_rate"] == 5e-5
    assert saved["schedule"]["reason"].startswith("learning rate 5e-05 from the book's Keras recipe")
    assert saved["padding_share"] == pytest.approx(1 - lengths.mean() / lengths.max(), abs=1e-3)
    assert metrics["best_epoch"] == 1 and (tmp_path / "run" / "model" / "tf_model.h5").is_file()


# endregion
# region Hardware options


@pytest.mark.parametrize("changes, message", [
    ({"mixed_precision": "mixed_float16"}, "mixed_float16"),
    ({"strategy": "mirrored"}, "GPU"),
    ({"strategy": "tpu"}, "TPU"),
    ({"strategy": "multi-worker"}, "TF_CONFIG"),
])
def test_resolve_hardware_refuses_options_this_machine_cannot_honour(monkeypatch, changes, message):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match=message):
        resolve_hardware(FinetuneConfig(**changes))


def test_resolve_hardware_refuses_bfloat16_without_bfloat16_hardware(monkeypatch):
    import tfemotion.hardware as hardware

    monkeypatch.setattr(hardware, "_bfloat16_hardware", lambda gpus: False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="bfloat16 hardware"):
        resolve_hardware(FinetuneConfig(mixed_precision="mixed_bfloat16", strategy="default"))


def test_resolve_hardware_auto_is_one_device_on_a_plain_machine(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    hardware = resolve_hardware(FinetuneConfig())
    assert (hardware.kind, hardware.replicas, hardware.is_chief) == ("default", 1, True)


def test_resolve_hardware_rejects_malformed_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        resolve_hardware(FinetuneConfig())


WORKER = textwrap.dedent("""
    import json, sys
    import tfemotion
    from tfemotion.config import DataConfig, FinetuneConfig
    from tfemotion.data import load_splits
    from tfemotion.finetune import train
    data, model, run = sys.argv[1:4]
    config = FinetuneConfig(model=model, epochs=1, learning_rate=1e-2, batch_size=16)
    metrics = train(load_splits(DataConfig(source=data)), DataConfig(source=data), config, run,
                    verbose=0)
    print("METRICS " + json.dumps(metrics))
""")


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


# Two fresh TensorFlow processes: 35-70 s on 2 shared cores, within the suite's budget.
def test_train_multi_worker_with_two_local_workers(tmp_path, data_dir, tiny_bert_dir):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    run = tmp_path / "run"
    workers = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster,
                                                      "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, str(script), str(data_dir), str(tiny_bert_dir), str(run)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=240)
            assert worker.returncode == 0, err[-3000:]
            outputs.append(json.loads(out.split("METRICS ", 1)[1]))
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert outputs[0]["epochs"] == outputs[1]["epochs"]  # one synchronised model
    config = json.loads((run / "config.json").read_text())
    assert (config["strategy"], config["replicas"]) == ("multi-worker", 2)
    assert json.loads((run / "metrics.json").read_text())["best_epoch"] == 1


# endregion


# region The Keras steps one by one (what notebook 02 shows)


def test_keras_steps_one_by_one_write_a_run_that_evaluates_and_exports(tmp_path, splits,
                                                                       data_dir, tiny_bert_dir):
    from tfemotion.callbacks import ValidationMetrics
    from tfemotion.checkpoints import load_tokenizer, model_max_length
    from tfemotion.config import choose_schedule
    from tfemotion.evaluate import evaluate_run
    from tfemotion.finetune import (build_classifier, compile_classifier, hidden_size,
                                    history_table, save_run)
    from tfemotion.runfolder import RunRecord

    names = splits["train"].features["label"].names
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=EPOCHS, **FAST)
    tf_keras.utils.set_random_seed(config.seed)
    tokenizer = load_tokenizer(config.model)
    model = build_classifier(config.model, names)
    assert model.config.id2label == dict(enumerate(names))
    schedule = choose_schedule(config, hidden_size(model.config))
    max_length = model_max_length(tokenizer, model.config)
    encoded = tokenize(splits, tokenizer, max_length)
    data = train_dataset(encoded["train"], tokenizer, config, max_length)
    compile_classifier(model, schedule, config, data.steps * config.epochs)
    validation = ValidationMetrics(encoded["validation"], tokenizer, train_examples=data.examples)
    history = model.fit(data.dataset, epochs=config.epochs, steps_per_epoch=data.steps,
                        callbacks=[validation], verbose=0)
    # Keras' own History sees the validation figures the callback adds.
    assert history.history["val_f1_weighted"] == [r["val_f1_weighted"] for r in validation.rows]
    assert validation.rows[-1]["val_accuracy"] >= 0.8, history_table(validation.rows)

    record = RunRecord(DataConfig(source=str(data_dir)), config, tuple(names), max_length,
                       schedule)
    run = tmp_path / "run"
    metrics = save_run(run, model, tokenizer, encoded, record, validation.rows)
    assert metrics["best_epoch"] == EPOCHS  # save_run keeps the model as it is: the last epoch
    assert metrics["validation"]["f1_weighted"] == pytest.approx(
        validation.rows[-1]["val_f1_weighted"], abs=1e-6)
    again = evaluate_run(run, "validation", dataset_dict=splits)
    assert again["f1_weighted"] == pytest.approx(metrics["validation"]["f1_weighted"], abs=1e-6)
    assert (run / "evaluation" / "validation" / "metrics.json").is_file()
    assert json.loads((run / "metrics.json").read_text()) == json.loads(json.dumps(metrics))


def test_train_chooses_and_records_the_learning_rate_for_the_checkpoint(
        tmp_path, splits, tiny_bert_dir, caplog):
    config = FinetuneConfig(model=str(tiny_bert_dir), epochs=1, batch_size=16)
    with caplog.at_level("INFO", logger="tfemotion"):
        metrics = train(splits, DataConfig(source="x"), config, tmp_path / "run", verbose=0)
    width = json.loads((tiny_bert_dir / "config.json").read_text())["hidden_size"]
    expected = (f"learning rate 0.0005 chosen for the encoder's hidden size {width}; "
                "warm-up 10% of the steps")
    assert metrics["schedule"] == {"learning_rate": 5e-4, "warmup_ratio": 0.1,
                                   "reason": expected}
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["schedule"]["reason"] == expected
    assert saved["finetune"]["learning_rate"] is None
    assert any(expected in message for message in caplog.messages)


# endregion
