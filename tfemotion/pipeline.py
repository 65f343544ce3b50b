"""The main job, stage after stage: explore -> baseline -> train -> evaluate -> export.

Each stage writes to its own folder under ``out_dir``:

    OUT/explore/   summary.json, class_distribution.png, words_per_text.png
    OUT/baseline/  metrics.json, confusion_matrix.png (umap.png)
    OUT/run/       the fine-tuning run folder (model/, metrics.json, history.csv, ...)
    OUT/serving/   NAME/VERSION/ SavedModel for TensorFlow Serving
    OUT/audit/     the label audit, when asked for (``OPTIONAL_STAGES``: K more trainings)
    OUT/pipeline.json  the seconds each stage took, and the stages run

The data is loaded once and its task (``tfemotion.data.task_of``) decided once; every stage
gets both.

Example:
    >>> import tempfile
    >>> from tfemotion.config import DataConfig, FeatureConfig, FinetuneConfig, ExportConfig
    >>> results = run_all(DataConfig(source=data_dir), FeatureConfig(model=checkpoint),
    ...                   FinetuneConfig(model=checkpoint), ExportConfig(), tempfile.mkdtemp(),
    ...                   stages=["explore"])
    >>> results["explore"]["splits"]["validation"]["rows"], sorted(results["seconds"])
    (60, ['explore', 'load', 'total'])
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from tfemotion.checkpoints import require_available
from tfemotion.config import AuditConfig, DataConfig, ExportConfig, FeatureConfig, FinetuneConfig
from tfemotion.files import write_json
from tfemotion.runfolder import PIPELINE_RUN_DIR
from tfemotion.task import Task

STAGES = ("explore", "baseline", "train", "evaluate", "export")
# Stages run only when named (``tfemotion run --audit``), after the others.
OPTIONAL_STAGES = ("audit",)


def stage_dirs(out_dir: str | Path) -> dict[str, Path]:
    """Where each stage writes under ``out_dir``.

    Example:
        >>> stage_dirs("out")["train"]
        PosixPath('out/run')
    """
    out = Path(out_dir)
    return {"explore": out / "explore", "baseline": out / "baseline",
            "train": out / PIPELINE_RUN_DIR, "evaluate": out / PIPELINE_RUN_DIR,
            "export": out / "serving", "audit": out / "audit"}


def run_all(
    data_config: DataConfig,
    feature_config: FeatureConfig,
    finetune_config: FinetuneConfig,
    export_config: ExportConfig,
    out_dir: str | Path,
    stages: Sequence[str] = STAGES,
    progress: Optional[Callable[[str], None]] = None,
    audit_config: Optional[AuditConfig] = None,
) -> dict[str, Any]:
    """Run the chosen stages in order on one loaded dataset; return each stage's result.

    Args:
        data_config: DataConfig. The data, loaded once for every stage.
        feature_config: FeatureConfig. The baseline's settings.
        finetune_config: FinetuneConfig. The training settings.
        export_config: ExportConfig. Export settings (``base_path`` is set to OUT/serving).
        out_dir: str or Path. Folder for every stage's outputs.
        stages: sequence of str. Subset of ``STAGES`` and ``OPTIONAL_STAGES``, run in that
            order.
        progress: optional callable taking a message, told when each stage starts.
        audit_config: AuditConfig, optional. The audit's settings (default: ``AuditConfig()``)
            when ``stages`` holds ``"audit"``.

    Returns:
        ``{stage: result}`` for each stage that ran, ``"task"``: the data's ``Task``, and
        ``"seconds"``: ``{stage: seconds, "total": seconds}`` (also written to
        ``OUT/pipeline.json``).

    Raises:
        ValueError: an unknown stage name.
        HubUnreachableError: a hub id for data or checkpoint while the hub is unreachable,
            before any work starts.
        DataError: the data cannot be read (before any stage starts).

    """
    order = STAGES + OPTIONAL_STAGES
    unknown = [s for s in stages if s not in order]
    if unknown:
        raise ValueError(f"stages must be among {order}. Received: stages={list(stages)}")
    tell = progress or (lambda message: None)
    # Fail before hours of work, naming every source that cannot be had.
    require_available([(data_config.source, "dataset", "--data"),
                       *((model, "checkpoint", "--model")
                         for model in dict.fromkeys([feature_config.model, finetune_config.model]))])

    from tfemotion.data import load_splits, task_of

    started = time.perf_counter()
    splits = load_splits(data_config)
    task = task_of(splits)
    dirs = stage_dirs(out_dir)
    results: dict[str, Any] = {"task": task}
    seconds: dict[str, float] = {"load": round(time.perf_counter() - started, 1)}
    for stage in (s for s in order if s in stages):
        tell(f"{stage} -> {dirs[stage]}")
        start = time.perf_counter()
        if stage == "audit":
            from tfemotion.audit import audit_labels

            results[stage] = audit_labels(data_config, finetune_config,
                                          audit_config or AuditConfig(), out_dir,
                                          dataset_dict=splits, task=task, progress=tell)
        else:
            results[stage] = _run_stage(stage, splits, task, dirs, data_config, feature_config,
                                        finetune_config, export_config)
        seconds[stage] = round(time.perf_counter() - start, 1)
    seconds["total"] = round(time.perf_counter() - started, 1)
    results["seconds"] = seconds
    write_json({"stages": [s for s in order if s in stages], "seconds": seconds},
               Path(out_dir) / "pipeline.json")
    return results


def _run_stage(stage: str, splits: Any, task: Task, dirs: dict[str, Path],
               data_config: DataConfig, feature_config: FeatureConfig,
               finetune_config: FinetuneConfig, export_config: ExportConfig) -> Any:
    if stage == "explore":
        from tfemotion.data.exploration import explore

        # Token statistics against what fine-tuning will truncate to.
        return explore(data_config, dirs["explore"], model=finetune_config.model,
                       max_length=finetune_config.max_length, dataset_dict=splits, task=task)
    if stage == "baseline":
        from tfemotion.features import run_baseline

        return run_baseline(splits, feature_config, dirs["baseline"], task=task)
    if stage == "train":
        from tfemotion.training import train

        return train(splits, data_config, finetune_config, dirs["train"], task=task)
    if stage == "evaluate":
        from tfemotion.evaluation import evaluate_run

        return {split: evaluate_run(dirs["evaluate"], split, dataset_dict=splits, task=task)
                for split in ("validation", "test") if split in splits}
    from tfemotion.export import export_run

    return export_run(dirs["train"], export_config.replace(base_path=str(dirs["export"])),
                      texts=verification_texts(splits))


def verification_texts(splits: Any) -> list[str]:
    """The texts an export is verified on: the validation split's (else the test split's).

    Example:
        >>> len(verification_texts(splits))
        60
    """
    split = next((s for s in ("validation", "test") if s in splits), None)
    return [str(text) for text in splits[split]["text"]] if split else []
