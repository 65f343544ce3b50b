"""The label audit in one call (``tfemotion audit``; ``tfemotion run --audit``).

Out-of-fold probabilities of every training text (``tfemotion.audit.folds``: K trainings with
the run's own recipe, resumable), the likely label errors by confident learning
(``tfemotion.audit.ranking``), and the report (``tfemotion.audit.report``), all in
``OUT/audit``.

Example (two trainings: skipped here, run by tests/audit/test_stage.py):
    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> summary = audit_labels(DataConfig(source=data_dir), FinetuneConfig(  # doctest: +SKIP
    ...     model=checkpoint, epochs=1, batch_size=16, learning_rate=1e-2, recipe="default"),
    ...     AuditConfig(folds=2), out, dataset_dict=splits)
    >>> summary["texts"], summary["cost"]["trainings"], sorted(summary["files"])  # doctest: +SKIP
    (240, 2, ['csv', 'md', 'plot'])
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional

from tfemotion.audit.folds import out_of_fold
from tfemotion.audit.ranking import rank_label_issues
from tfemotion.audit.report import write_report
from tfemotion.config import AuditConfig, DataConfig, FinetuneConfig
from tfemotion.task import Task

AUDIT_DIR = "audit"


def audit_labels(data_config: DataConfig, finetune_config: FinetuneConfig,
                 audit_config: AuditConfig, out_dir: str | Path, *,
                 dataset_dict: Optional[Any] = None, task: Optional[Task] = None,
                 verbose: Any = 0, progress: Optional[Callable[[str], None]] = None
                 ) -> dict[str, Any]:
    """Audit the training split's labels; write ``OUT/audit``; return the summary.

    Args:
        data_config: DataConfig. The data (its train split is audited) and where each text
            comes from (file and line).
        finetune_config: FinetuneConfig. The run's settings: each fold trains with them, with
            the recipe and epochs the full training split gets.
        audit_config: AuditConfig. Folds, fold seed, cleanlab's rule.
        out_dir: the output folder; the audit writes ``OUT/audit``. Run again on the same
            folder to resume: finished folds are read back, an interrupted one resumes.
        dataset_dict: the loaded splits, optional (default: ``load_splits(data_config)``).
        task: Task, optional (default: ``task_of`` the splits).
        verbose: Keras ``fit`` verbosity of the folds.
        progress: optional callable told, in a line, what the audit is doing.

    Returns:
        ``{"texts", "flagged", "per_label", "cost": {"trainings", "trained_now", "seconds",
        "fold_seconds", "recipe"}, "method", "files"}``.

    Raises:
        ValueError: K < 2 or more folds than the rarest label's texts; an audit folder started
            with other settings or data.
        DataError: the data cannot be read.
    """
    from tfemotion.data import load_splits, split_sources, task_of

    started = time.perf_counter()
    splits = dataset_dict if dataset_dict is not None else load_splits(data_config)
    task = task or task_of(splits)
    train = splits["train"]
    sources = split_sources(data_config, dataset_dict=splits)
    if len(sources) != len(train):  # splits given that are not the data_config's
        sources = [f"train row {i}" for i in range(1, len(train) + 1)]
    folder = Path(out_dir) / AUDIT_DIR
    probabilities, folds, recipe = out_of_fold(
        splits, data_config, finetune_config, audit_config.folds, audit_config.fold_seed,
        folder, task, verbose=verbose, progress=progress)
    labels = train["label"]
    issues = rank_label_issues(probabilities, labels, task, audit_config.filter_by)
    fold_seconds = [round(f.seconds, 1) for f in folds]
    cost = {"trainings": len(folds), "trained_now": sum(f.trained_now for f in folds),
            "seconds": round(sum(fold_seconds), 1), "fold_seconds": fold_seconds,
            "session_seconds": round(time.perf_counter() - started, 1), "recipe": recipe}
    method = (f"confident learning (cleanlab, filter_by={audit_config.filter_by!r}) on "
              f"out-of-fold probabilities from {audit_config.folds} folds, ranked by label "
              f"quality (the out-of-fold probability of the given label)")
    return write_report(folder, train["text"], labels, sources, probabilities, issues, task,
                        cost, method)
