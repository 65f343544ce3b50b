"""The book's baseline: a transformer as a feature extractor, then logistic regression.

The encoder's pooled hidden states (``tfemotion.features.extraction``) train a scikit-learn
logistic regression (one-vs-rest for multi-label data), compared with the most-frequent dummy
on the validation and test splits; the UMAP view of the train features is optional (extra
``umap``).

Example:
    >>> import tempfile
    >>> from tfemotion.config import FeatureConfig
    >>> metrics = run_baseline(splits, FeatureConfig(model=checkpoint), tempfile.mkdtemp(),
    ...                        task=task)
    >>> sorted(metrics)
    ['dummy', 'features', 'logistic_regression']
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from tfemotion.config import SPLITS, FeatureConfig
from tfemotion.features.extraction import extract_features
from tfemotion.task import Task

logger = logging.getLogger(__name__)


def run_baseline(dataset_dict: Any, config: FeatureConfig, out_dir: Union[str, os.PathLike],
                 *, task: Optional[Task] = None) -> dict:
    """The book's baseline: encoder features, logistic regression vs. most-frequent dummy.

    Writes ``OUT/metrics.json``, ``OUT/confusion_matrix.png`` (logistic regression on the
    validation split, else test) and, with ``config.umap``, ``OUT/umap.png``. Features are
    cached in ``config.cache_dir`` (default ``OUT/cache``). Splits missing from
    ``dataset_dict`` are left out of the metrics.

    A multi-label task gets one-vs-rest logistic regression (one classifier per label, decisions
    at probability 0.5) against the per-label most-frequent dummy, the multi-label metrics and
    ``OUT/label_confusion.png`` instead of the confusion matrix.

    Args:
        dataset_dict: DatasetDict. Splits among train/validation/test with ``text`` and a
            ``label`` column.
        config: FeatureConfig. Checkpoint, pooling, batching, classifier and plot settings.
        out_dir: str or PathLike. Output folder (created).
        task: Task, optional. The data's task (default: ``tfemotion.data.task_of`` the splits).

    Returns:
        ``{"logistic_regression": {"validation": {...the task's metrics}, "test": {...}},
        "dummy": {...}, "features": {"texts", "seconds", "texts_per_second"}}``, as written to
        ``metrics.json``.

    Raises:
        ValueError: there is no train split.
        ImportError: ``config.umap`` is set and umap-learn is not installed.
    """
    from tfemotion.data import task_of
    from tfemotion.evaluation.metrics import per_label_report, task_metrics
    from tfemotion.evaluation.plots import plot_confusion_matrix, plot_label_confusion
    from tfemotion.files import write_json

    if "train" not in dataset_dict:
        raise ValueError("The baseline needs a 'train' split to fit the classifiers. "
                         f"Received: splits={list(dataset_dict)}")
    task = task or task_of(dataset_dict)
    if config.umap:
        _import_umap()  # fail before minutes of feature extraction, not after
    out = Path(out_dir)
    splits = [s for s in SPLITS if s in dataset_dict]
    missing = [s for s in ("validation", "test") if s not in dataset_dict]
    if missing:
        logger.warning("No %s split: left out of the baseline metrics", " or ".join(missing))

    start = time.perf_counter()
    features = extract_features({s: dataset_dict[s] for s in splits}, config=config,
                                cache_dir=config.cache_dir or out / "cache")
    seconds = time.perf_counter() - start
    labels = {s: _targets(dataset_dict[s], task) for s in splits}
    metrics: dict[str, Any] = {}
    predictions: dict[str, np.ndarray] = {}
    for name, classifier in _classifiers(task, config.max_iter).items():
        classifier.fit(features["train"], labels["train"])
        metrics[name] = {}
        for split in splits[1:]:
            predicted = classifier.predict(features[split])
            metrics[name][split] = task_metrics(task, labels[split], predicted)
            if name == "logistic_regression":
                predictions[split] = predicted
    texts = sum(len(f) for f in features.values())
    metrics["features"] = {"texts": texts, "seconds": seconds,
                           "texts_per_second": texts / seconds if seconds > 0 else 0.0}

    names = task.label_names
    shown = next((s for s in ("validation", "test") if s in predictions), None)
    if shown is None:
        logger.warning("No validation or test split: no confusion matrix")
    elif task.multi_label:
        plot_label_confusion(per_label_report(labels[shown], predictions[shown], names),
                             out / "label_confusion.png")
    else:
        plot_confusion_matrix(labels[shown], predictions[shown], names,
                              out / "confusion_matrix.png",
                              title=f"Logistic regression, {shown} (normalized)")
    if config.umap:
        train_labels = labels["train"]
        members = [np.flatnonzero(train_labels[:, i] if task.multi_label else train_labels == i)
                   for i in range(task.num_labels)]
        _plot_umap(_umap_embedding(features["train"]), members, names, out / "umap.png")
    write_json(metrics, out / "metrics.json")
    return metrics


def _targets(dataset: Any, task: Task) -> np.ndarray:
    """What scikit-learn fits on: label ids, or a 0/1 ``[texts, labels]`` matrix."""
    if task.multi_label:
        return task.multi_hot(dataset["label"]).astype(int)
    return np.asarray(list(dataset["label"]))


def _classifiers(task: Task, max_iter: int) -> dict[str, Any]:
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    regression = LogisticRegression(max_iter=max_iter)
    return {"logistic_regression": OneVsRestClassifier(regression) if task.multi_label
            else regression,
            "dummy": DummyClassifier(strategy="most_frequent")}


def _import_umap() -> Any:
    try:
        import umap
    except ImportError as error:
        raise ImportError(
            "The UMAP plot needs umap-learn: pip install 'tfemotion[umap]'") from error
    return umap


def _umap_embedding(features: np.ndarray, seed: int = 42) -> np.ndarray:
    """2-D UMAP of min-max scaled features (the book: cosine metric)."""
    from sklearn.preprocessing import MinMaxScaler

    umap = _import_umap()
    scaled = MinMaxScaler().fit_transform(features)
    reducer = umap.UMAP(n_components=2, metric="cosine", random_state=seed, n_jobs=1)
    return reducer.fit(scaled).embedding_


def _plot_umap(embedding: np.ndarray, members: Sequence[np.ndarray], names: Sequence[str],
               path: Path) -> Path:
    """One hexbin panel per label (``members[i]``: rows carrying label i), as in the book."""
    from tfemotion.files import new_figure, save_figure

    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    fig, axes = new_figure(2.4 * columns, 2.2 * rows, rows, columns)
    cmaps = ["Greys", "Blues", "Oranges", "Reds", "Purples", "Greens"]
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.axis("off")
            continue
        points = embedding[members[i]]
        if len(points):
            ax.hexbin(points[:, 0], points[:, 1], cmap=cmaps[i % len(cmaps)], gridsize=20,
                      linewidths=(0,))
        ax.set_title(names[i])
        ax.set_xticks([])
        ax.set_yticks([])
    save_figure(fig, path)
    return path
