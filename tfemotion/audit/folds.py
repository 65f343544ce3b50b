"""Out-of-fold probabilities: K trainings, each predicting the texts it did not see.

The training texts are split into K folds (stratified by label for single-label data, at
random for multi-label data). Fold k trains with ``tfemotion.training.train`` on the other
K-1 folds, with the recipe and epochs the full training split would get (decided once, by
``fold_recipe``, and passed down: a fold is smaller, so ``recipe="auto"`` could otherwise pick
another recipe for it), and then predicts the texts of fold k. Each fold is a run folder
``AUDIT/folds/k/``: a finished fold is skipped, an interrupted one resumes from its last
completed epoch, like ``tfemotion train --resume``. What fold k predicted is kept in
``AUDIT/folds/k/heldout.npz`` (the texts' rows, their probabilities, the seconds it took); the
fold's per-epoch checkpoints are deleted then (its saved model stays).

Example:
    >>> assign_folds([0, 0, 1, 1, 1, 0], Task(("a", "b")), folds=2, seed=0).tolist()
    [1, 0, 1, 0, 1, 0]
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tfemotion.config import DataConfig, FinetuneConfig, choose_recipe, choose_schedule
from tfemotion.runfolder import RunFolder, RunRecord
from tfemotion.task import Task

logger = logging.getLogger(__name__)

HELDOUT_FILE = "heldout.npz"
ASSIGNMENT_FILE = "folds.json"


@dataclass(frozen=True)
class FoldResult:
    """What one fold gave: the rows it predicted, their probabilities, what it cost."""

    fold: int
    rows: np.ndarray  # indices into the training split
    probabilities: np.ndarray  # [len(rows), num_labels]
    seconds: float  # training + prediction, summed over the sessions that worked on it
    trained_now: bool  # False: finished by an earlier session, read back


def assign_folds(labels: Sequence[Any], task: Task, folds: int, seed: int) -> np.ndarray:
    """The fold (0..K-1) of each training text.

    Single-label data is stratified (``StratifiedKFold``): every fold holds each label's share,
    so every fold's model has seen every label. Multi-label data is split at random (``KFold``).

    Raises:
        ValueError: K < 2, more folds than texts, or (single-label) more folds than the texts
            of the rarest label, which is named.

    Example:
        >>> assign_folds([[0], [1], [0, 1], [1]], Task(("a", "b"), "multi_label"),
        ...              folds=2, seed=0).tolist()
        [1, 1, 0, 0]
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if folds < 2:
        raise ValueError(f"the audit needs at least 2 folds. Received: folds={folds!r}")
    if folds > len(labels):
        raise ValueError(f"more folds than training texts. Received: folds={folds}, "
                         f"texts={len(labels)}")
    assignment = np.full(len(labels), -1, dtype=np.int64)
    if task.multi_label:
        splitter = KFold(folds, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(labels)))
    else:
        ids = np.asarray(labels, dtype=np.int64)
        counts = np.bincount(ids, minlength=task.num_labels)
        present = [i for i in range(task.num_labels) if counts[i] > 0]
        rarest = min(present, key=lambda i: counts[i])
        if counts[rarest] < folds:
            raise ValueError(
                f"each fold needs a text of every label, but label {task.label_names[rarest]!r} "
                f"has {counts[rarest]} training text(s): use at most {counts[rarest]} folds. "
                f"Received: folds={folds}")
        parts = StratifiedKFold(folds, shuffle=True, random_state=seed).split(ids, ids)
    for fold, (_, held) in enumerate(parts):
        assignment[held] = fold
    return assignment


def fold_recipe(config: FinetuneConfig, train_texts: int, task: Task) -> tuple[FinetuneConfig, str]:
    """The settings every fold trains with: the recipe and epochs of the full training split.

    ``recipe="auto"`` decides by texts per label and the default epochs by the steps of an
    epoch; a fold holds (K-1)/K of the texts, so each is decided here on the full split and
    written into the fold's settings.

    Example:
        >>> settings, why = fold_recipe(FinetuneConfig(model="m"), 16000, Task(tuple("abcdef")))
        >>> settings.recipe, settings.epochs
        ('default', 2)
        >>> fold_recipe(FinetuneConfig(model="m"), 48, Task(tuple("abcdef")))[0].recipe
        'contrastive'
    """
    recipe, reason = choose_recipe(config, train_texts, task.num_labels)
    settings = config.replace(recipe=recipe, resume=False)
    if recipe != "contrastive" and config.epochs is None:
        steps = math.ceil(train_texts / config.batch_size)  # about the full run's steps
        epochs = choose_schedule(settings, None, steps).epochs
        settings = settings.replace(epochs=epochs)
        reason += f"; {epochs} epochs, as the full training split would get"
    return settings, reason


def train_fold(splits: Any, assignment: np.ndarray, fold: int, data_config: DataConfig,
               settings: FinetuneConfig, fold_dir: str | Path, task: Task, *,
               verbose: Any = 0) -> FoldResult:
    """Train fold ``fold`` (or resume it, or read it back when finished) and predict its texts.

    Args:
        splits: DatasetDict as from ``load_splits`` (its ``test`` split is not used).
        assignment: the fold of each training text (``assign_folds``).
        fold: int. Which fold's texts are held out.
        data_config: DataConfig. Recorded in the fold's run record.
        settings: FinetuneConfig from ``fold_recipe``.
        fold_dir: the fold's run folder.
        task: Task of the data.
        verbose: Keras ``fit`` verbosity.

    Returns:
        The fold's ``FoldResult``.
    """
    folder = Path(fold_dir)
    heldout = folder / HELDOUT_FILE
    rows = np.flatnonzero(assignment == fold)
    if heldout.is_file():
        saved = np.load(heldout)
        if not np.array_equal(saved["rows"], rows):
            raise ValueError(f"{heldout} holds other texts than fold {fold} of this audit: "
                             "delete the audit folder or choose another --out")
        return FoldResult(fold, rows, saved["probabilities"], float(saved["seconds"]), False)
    started = time.perf_counter()
    run = RunFolder(folder)
    earlier = _earlier_seconds(run)  # spent on this fold by sessions that were interrupted
    if not run.is_finished():
        _train(splits, assignment, fold, data_config, settings, run, task, verbose)
    texts = splits["train"]["text"]
    probabilities = _predict(run, [texts[int(i)] for i in rows], task, settings.batch_size)
    seconds = time.perf_counter() - started + earlier
    _save_npz(heldout, rows=rows, probabilities=probabilities, seconds=np.float64(seconds))
    # The per-epoch checkpoints (model and optimizer: ~270 MB an epoch for MiniLM) only served
    # to resume this fold, which is done.
    shutil.rmtree(run.checkpoints, ignore_errors=True)
    return FoldResult(fold, rows, probabilities, seconds, True)


def out_of_fold(splits: Any, data_config: DataConfig, config: FinetuneConfig, folds: int,
                seed: int, audit_dir: str | Path, task: Task, *, verbose: Any = 0,
                progress: Optional[Callable[[str], None]] = None
                ) -> tuple[np.ndarray, list[FoldResult], str]:
    """Out-of-fold probabilities of every training text, ``[texts, num_labels]``.

    Writes ``AUDIT/folds.json`` (the settings and each text's fold; a resumed audit must match
    it), one run folder per fold under ``AUDIT/folds/``, and
    ``AUDIT/out_of_fold_probabilities.npy``.

    Returns:
        ``(probabilities, fold results, the recipe's reason)``.

    Raises:
        ValueError: a bad K (see ``assign_folds``), or an audit folder started with other
            settings or data.
    """
    tell = progress or (lambda message: None)
    audit = Path(audit_dir)
    labels = splits["train"]["label"]
    assignment = assign_folds(labels, task, folds, seed)
    settings, reason = fold_recipe(config, len(labels), task)
    _check_or_write_assignment(audit / ASSIGNMENT_FILE, assignment, settings, seed)
    probabilities = np.full((len(labels), task.num_labels), np.nan)
    results = []
    for fold in range(folds):
        tell(f"fold {fold + 1} of {folds}: training on {int((assignment != fold).sum())} texts, "
             f"predicting {int((assignment == fold).sum())}")
        result = train_fold(splits, assignment, fold, data_config, settings,
                            audit / "folds" / str(fold), task, verbose=verbose)
        probabilities[result.rows] = result.probabilities
        results.append(result)
    np.save(audit / "out_of_fold_probabilities.npy", probabilities)
    return probabilities, results, reason


def _train(splits: Any, assignment: np.ndarray, fold: int, data_config: DataConfig,
           settings: FinetuneConfig, run: RunFolder, task: Task, verbose: Any) -> None:
    from datasets import DatasetDict

    from tfemotion.training import train

    if run.state.is_file():
        settings = settings.replace(resume=True)
        logger.info("Resuming fold %d in %s", fold, run.root)
    elif run.root.exists():  # started, but no epoch finished: nothing to keep
        shutil.rmtree(run.root)
    kept = np.flatnonzero(assignment != fold)
    data = {"train": splits["train"].select(kept)}
    if "validation" in splits:
        data["validation"] = splits["validation"]
    started = time.perf_counter()
    train(DatasetDict(data), data_config, settings, run.root, task=task, verbose=verbose)
    _record_seconds(run, time.perf_counter() - started)
    import tf_keras

    tf_keras.backend.clear_session()  # K models in one process: free each before the next


def _predict(run: RunFolder, texts: list[str], task: Task, batch_size: int) -> np.ndarray:
    from tfemotion.prediction.keras_model import load_classifier, predict_proba

    model, tokenizer = load_classifier(run.root)
    record = RunRecord.load(run)
    return predict_proba(model, tokenizer, texts, batch_size, record.max_length, task)


def _seconds_file(run: RunFolder) -> Path:
    return run.root / "audit_seconds.json"


def _record_seconds(run: RunFolder, seconds: float) -> None:
    """Add this session's training seconds to the fold's (a resumed fold adds up)."""
    total = _earlier_seconds(run) + seconds
    _seconds_file(run).write_text(json.dumps({"train_seconds": round(total, 1)}),
                                  encoding="utf-8")


def _earlier_seconds(run: RunFolder) -> float:
    path = _seconds_file(run)
    if not path.is_file():
        return 0.0
    return float(json.loads(path.read_text(encoding="utf-8"))["train_seconds"])


def _check_or_write_assignment(path: Path, assignment: np.ndarray, settings: FinetuneConfig,
                               seed: int) -> None:
    wanted = {"fold_seed": seed, "folds": int(assignment.max()) + 1,
              "settings": settings.to_dict(), "fold_of_each_text": assignment.tolist()}
    wanted = json.loads(json.dumps(wanted))  # as it reads back
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in wanted if saved.get(k) != wanted[k])
        if changed:
            raise ValueError(
                f"{path.parent} holds an audit with other {', '.join(changed)} (folds, seed, "
                f"training settings or data): its finished folds cannot be reused. Delete it or "
                f"choose another --out. Received: audit_dir={str(path.parent)!r}")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted), encoding="utf-8")


def _save_npz(path: Path, **arrays: Any) -> None:
    """Written under another name, then renamed: a killed audit never leaves half a file."""
    temporary = path.with_name(f".{path.stem}.tmp.npz")
    np.savez(temporary, **arrays)
    temporary.replace(path)
