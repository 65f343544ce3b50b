"""The audit end to end on the tiny BERT: planted flips found with their file and line, a
finished audit read back, an interrupted fold resumed, multi-label data, the run's stage."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pandas as pd
import pytest
from support import KEYWORDS, synthetic_rows, two_label_rows, write_split

from tfemotion.audit import audit_labels
from tfemotion.config import AuditConfig, DataConfig, FinetuneConfig

TRAIN_TEXTS = 640
FLIPS = 32  # 5%
# The tiny BERT learns the keyword task from a fold's 320 texts in these settings (from 160 its
# validation accuracy was 0.82-0.93 over seeds, too weak to tell flips from its own errors;
# 1e-2 for 20 epochs: 0.47). Its epochs cost little; each training's overhead (building,
# compiling, saving, evaluating) most.
SETTINGS = {"epochs": 30, "learning_rate": 3e-3, "batch_size": 16, "warmup_ratio": 0.0,
            "recipe": "default"}
# Checked on seeds 0-9 of the data, the flips and the folds (the fixture below takes seed 0,
# the first of them, not one picked to pass): see test_the_planted_flips_are_found_...
SEED = 0


def write_flipped(folder, seed: int) -> tuple[list[int], list[str]]:
    """A train split of keyword texts with FLIPS labels flipped (and a validation split);
    the flipped rows (0-based) and the true labels."""
    rows = synthetic_rows(TRAIN_TEXTS, seed)
    rng = random.Random(seed)
    flipped = sorted(rng.sample(range(TRAIN_TEXTS), FLIPS))
    truth = [label for _, label in rows]
    for i in flipped:
        rows[i] = (rows[i][0], rng.choice([name for name in KEYWORDS if name != truth[i]]))
    write_split(folder / "train.txt", rows, "txt")
    write_split(folder / "validation.txt", synthetic_rows(60, seed + 1), "txt")
    return flipped, truth


def run_audit(tmp_path, checkpoint, seed: int):
    data_dir = tmp_path / "data"
    flipped, truth = write_flipped(data_dir, seed)
    config = FinetuneConfig(model=str(checkpoint), seed=seed, **SETTINGS)
    summary = audit_labels(DataConfig(source=str(data_dir)), config,
                           AuditConfig(folds=2, fold_seed=seed), tmp_path / "out")
    return data_dir, flipped, truth, summary


@pytest.fixture(scope="module")
def audited(tmp_path_factory, tiny_bert_dir):
    return run_audit(tmp_path_factory.mktemp("audit"), tiny_bert_dir, SEED)


def _flagged_rows(table: pd.DataFrame) -> np.ndarray:
    return np.array([int(source.rsplit(":", 1)[1]) - 1 for source in table["source"]])


@pytest.mark.integration
def test_the_planted_flips_are_found_with_their_file_line_and_true_label(audited):
    """Seeds 0-9 (data, flips, folds, training; 2 folds of 320 texts): precision 0.46-1.00
    (chance: 0.05), recall 0.59-0.94, the true label suggested for 0.93-1.00 of the flips found;
    asked: 0.35, 0.45 and 0.80. The spread is the tiny model's: a fold whose model stops at 0.88
    validation accuracy flags its own errors too."""
    data_dir, flipped, truth, summary = audited
    table = pd.read_csv(summary["files"]["csv"], keep_default_na=False)
    rows = _flagged_rows(table)
    hits = np.isin(rows, flipped)
    assert hits.mean() >= 0.35 and hits.sum() / len(flipped) >= 0.45
    assert all(s.startswith(f"{data_dir / 'train.txt'}:") for s in table["source"])
    lines = (data_dir / "train.txt").read_text(encoding="utf-8").splitlines()
    for _, row in table.iterrows():
        line = lines[int(row["source"].rsplit(":", 1)[1]) - 1]
        assert line == f"{row['text']};{row['label']}"  # the file and line it came from
    true_suggested = [row["suggested_label"] == truth[i] for i, (_, row) in
                      zip(rows[hits], table[hits].iterrows())]
    assert np.mean(true_suggested) >= 0.80
    assert summary["cost"]["trainings"] == 2 and summary["cost"]["seconds"] > 0
    assert "recipe 'default' as given" in summary["cost"]["recipe"]


@pytest.mark.integration
def test_a_finished_audit_is_read_back_and_an_interrupted_fold_resumes(audited, tmp_path):
    data_dir, _, _, summary = audited
    out = tmp_path / "out"
    shutil.copytree(data_dir.parent / "out", out)
    before = pd.read_csv(summary["files"]["csv"], keep_default_na=False)
    config = FinetuneConfig(model=json.loads((out / "audit" / "folds.json").read_text())[
        "settings"]["model"], seed=SEED, **SETTINGS)
    again = audit_labels(DataConfig(source=str(data_dir)), config,
                         AuditConfig(folds=2, fold_seed=SEED), out)
    assert again["cost"]["trained_now"] == 0 and again["cost"]["seconds"] == summary["cost"][
        "seconds"]
    # Fold 1 killed after its last epoch's checkpoint: no model, no predictions yet.
    fold = out / "audit" / "folds" / "1"
    (fold / "heldout.npz").unlink()
    shutil.rmtree(fold / "model")
    (fold / "metrics.json").unlink()
    resumed = audit_labels(DataConfig(source=str(data_dir)), config,
                           AuditConfig(folds=2, fold_seed=SEED), out)
    assert resumed["cost"]["trained_now"] == 1
    after = pd.read_csv(resumed["files"]["csv"], keep_default_na=False)
    assert sorted(after["source"]) == sorted(before["source"])
    with pytest.raises(ValueError, match="other fold_of_each_text.*choose another --out"):
        audit_labels(DataConfig(source=str(data_dir)), config,
                     AuditConfig(folds=2, fold_seed=SEED + 1), out)


def run_multi_label_audit(tmp_path, checkpoint, seed: int):
    """Texts of two keyword labels, 12 of 240 with one label swapped for another; the audit's
    table and the swapped rows."""
    rows = two_label_rows(240, seed)
    rng = random.Random(seed)
    planted = sorted(rng.sample(range(len(rows)), 12))
    for i in planted:
        text, labels = rows[i]
        other = rng.choice([name for name in KEYWORDS if name not in labels])
        rows[i] = (text, sorted([labels[0], other]))
    folder = tmp_path / "data"
    folder.mkdir(parents=True)
    for name, split in (("train", rows), ("validation", two_label_rows(60, seed + 1))):
        (folder / f"{name}.jsonl").write_text("".join(
            json.dumps({"text": t, "labels": ls}) + "\n" for t, ls in split), encoding="utf-8")
    config = FinetuneConfig(model=str(checkpoint), seed=seed, **SETTINGS)
    summary = audit_labels(DataConfig(source=str(folder)), config,
                           AuditConfig(folds=2, fold_seed=seed), tmp_path / "out")
    return pd.read_csv(summary["files"]["csv"], keep_default_na=False), planted


@pytest.mark.integration
def test_multi_label_data_is_audited_per_label(tmp_path, tiny_bert_dir):
    """The multi-label path end to end: per-label folds, cleanlab's multi-label finder, the
    table's joined names and per-label probabilities, counts per label. (How well it finds
    swapped labels is test_ranking.py's, on known probabilities: the tiny BERT learns the
    two-label texts too weakly from 120 of them for a bound that holds on every seed.)"""
    table, planted = run_multi_label_audit(tmp_path, tiny_bert_dir, SEED)
    summary = json.loads((tmp_path / "out" / "audit" / "summary.json").read_text())
    assert summary["texts"] == 240 and summary["flagged"] == len(table) > 0
    assert summary["cost"]["trainings"] == 2
    probabilities = np.load(tmp_path / "out" / "audit" / "out_of_fold_probabilities.npy")
    assert probabilities.shape == (240, 6) and not np.isnan(probabilities).any()
    names = set(KEYWORDS)
    for _, row in table.iterrows():
        given, suggested = set(row["label"].split(",")), set(row["suggested_label"].split(","))
        assert given <= names and suggested <= names and given != suggested
        cells = dict(part.split("=") for part in row["label_probability"].split(", "))
        assert set(cells) == given and all(0 <= float(p) <= 1 for p in cells.values())
        line = int(row["source"].rsplit(":", 1)[1])
        assert json.loads((tmp_path / "data" / "train.jsonl").read_text().splitlines()[
            line - 1])["text"] == row["text"]
    changed = sum(len(set(r["label"].split(",")) ^ set(r["suggested_label"].split(",")))
                  for _, r in table.iterrows())
    assert sum(c["flagged"] for c in summary["per_label"].values()) == changed
