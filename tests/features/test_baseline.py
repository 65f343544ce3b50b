"""The book's baseline: logistic regression on the features against the dummy; its plots."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from support import load_data, write_dataset

from tfemotion.config import DataConfig, FeatureConfig
from tfemotion.features import run_baseline
from tfemotion.features.baseline import _plot_umap


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_ok(path) -> bool:
    return path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 2000


@pytest.fixture(scope="module")
def learnable_splits(tmp_path_factory):
    from tfemotion.data import load_splits

    folder = write_dataset(tmp_path_factory.mktemp("learnable"), "txt", sizes=(300, 80, 80), seed=3)
    return load_splits(DataConfig(source=str(folder)))


def test_run_baseline_writes_metrics_and_plots(learnable_splits, tiny_bert_dir, tmp_path):
    config = FeatureConfig(model=str(tiny_bert_dir), pooling="mean")
    metrics = run_baseline(learnable_splits, config, tmp_path)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written == metrics
    assert set(written) == {"logistic_regression", "dummy", "features"}
    for model in ("logistic_regression", "dummy"):
        assert set(written[model]) == {"validation", "test"}
        for scores in written[model].values():
            assert set(scores) == {"accuracy", "f1_weighted", "f1_macro"}
    assert set(written["features"]) == {"texts", "seconds", "texts_per_second"}
    assert written["features"]["texts"] == 460
    lr, dummy = written["logistic_regression"]["validation"], written["dummy"]["validation"]
    assert lr["accuracy"] > dummy["accuracy"] + 0.1
    assert lr["f1_macro"] > dummy["f1_macro"]
    assert _png_ok(tmp_path / "confusion_matrix.png")
    assert not (tmp_path / "umap.png").exists()
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 3


def test_run_baseline_leaves_out_missing_splits(learnable_splits, tiny_bert_dir, tmp_path):
    import datasets

    splits = datasets.DatasetDict({"train": learnable_splits["train"].select(range(60))})
    metrics = run_baseline(splits, FeatureConfig(model=str(tiny_bert_dir)), tmp_path)
    assert metrics["logistic_regression"] == {} and metrics["dummy"] == {}
    assert metrics["features"]["texts"] == 60
    assert (tmp_path / "metrics.json").exists() and not (tmp_path / "confusion_matrix.png").exists()


def test_run_baseline_requires_a_train_split(learnable_splits, tmp_path):
    import datasets

    splits = datasets.DatasetDict({"test": learnable_splits["test"]})
    with pytest.raises(ValueError, match=r"needs a 'train' split.*Received: splits=\['test'\]"):
        run_baseline(splits, FeatureConfig(model="unused"), tmp_path)


def test_run_baseline_umap_without_extra_names_it(learnable_splits, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ImportError, match=r"pip install 'tfemotion\[umap\]'"):
        run_baseline(learnable_splits, FeatureConfig(model="never-loaded", umap=True), tmp_path)
    assert not (tmp_path / "cache").exists()  # failed before extracting anything


def test_plot_umap_draws_one_panel_per_label_with_that_label_s_points(tmp_path, monkeypatch):
    from tfemotion import files

    figures = []
    original = files.new_figure
    monkeypatch.setattr(files, "new_figure",
                        lambda *args: figures.append(original(*args)) or figures[-1])
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=300)
    embedding = rng.normal(size=(300, 2)) + labels[:, None]
    names = ["sadness", "joy", "love", "anger", "fear"]
    members = [np.flatnonzero(labels == i) for i in range(5)]
    path = _plot_umap(embedding, members, names, tmp_path / "umap.png")
    assert _png_ok(path)
    (figure, axes), = figures
    panels = [ax for ax in axes.flat if ax.axison]
    assert [ax.get_title() for ax in panels] == names  # 5 panels; the 6th cell is blank
    assert len(axes.flat) == 6
    for ax, rows in zip(panels, members):
        (hexbins,) = ax.collections
        assert hexbins.get_array().sum() == len(rows)  # every point of that label, no other


@pytest.mark.slow
def test_run_baseline_umap_plot(learnable_splits, tiny_bert_dir, tmp_path):
    pytest.importorskip("umap")
    run_baseline(learnable_splits, FeatureConfig(model=str(tiny_bert_dir), umap=True), tmp_path)
    assert _png_ok(tmp_path / "umap.png")


def test_multi_label_baseline_is_one_vs_rest(multi_label_dir, tiny_bert_dir, tmp_path):
    splits = load_data(multi_label_dir)
    metrics = run_baseline(splits, FeatureConfig(model=str(tiny_bert_dir), umap=False), tmp_path)
    for name in ("logistic_regression", "dummy"):
        assert set(metrics[name]["validation"]) == {"f1_micro", "f1_macro", "f1_weighted",
                                                   "subset_accuracy", "hamming_loss"}
    assert (tmp_path / "label_confusion.png").stat().st_size > 2000
