"""SavedModel export for TensorFlow Serving: raw text in, labels and probabilities out.

The export holds the fine-tuned classifier and the in-graph tokenizer of
:mod:`tfemotion.tokenizers` (core TensorFlow ops only, so stock TensorFlow Serving, CPU or GPU
image, runs it with no Python and no custom op), behind the signatures of
:mod:`tfemotion.export.signatures` (``serving_default``, ``classify``, ``tokenize``, ``encoded``,
``encoded_int64``), built by :mod:`tfemotion.export.graph`.

The task (label names, problem type) comes from the run record, or for a bare model folder from
its config (``tfemotion.checkpoints.model_task``). ``assets.extra`` holds TF Serving's warm-up
requests (:mod:`tfemotion.export.warmup`) and the export record
(:mod:`tfemotion.export.record`: task, max length, length grouping, tokenizer settings, the
TensorFlow that wrote it). Checkpoints whose tokenizer no in-graph tokenizer reproduces get the
``encoded`` signatures only, and the report says why. The export is written to a hidden
temporary folder beside the versions, checked in a fresh process that imports only TensorFlow
(:mod:`tfemotion.export.verification`: token ids equal to the Hugging Face tokenizer's,
probabilities within 1e-5 of the Keras model's), and only then renamed to
``BASE/NAME/VERSION``: TensorFlow Serving never sees a half-written or failing version, and an
existing version is never overwritten.

Example:
    >>> import tempfile
    >>> from tfemotion.config import ExportConfig
    >>> report = export_run(run_dir, ExportConfig(base_path=tempfile.mkdtemp(), verify=False))
    >>> report["version"], report["signatures"][:2], report["labels"][:2]
    (1, ['classify', 'encoded'], ['sadness', 'joy'])
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Optional, Sequence

from tfemotion.config import ExportConfig
from tfemotion.export.record import ExportRecord
from tfemotion.export.signatures import ENCODED_SIGNATURES, next_version, signature_table
from tfemotion.task import DEFAULT_THRESHOLD, Task

logger = logging.getLogger(__name__)

TOLERANCE = 1e-5  # largest accepted probability difference from the Keras model
# ... per compute precision of the export, against the float32 model. bfloat16 keeps 8 bits of
# mantissa (float16 10): a text near a decision boundary may move by some hundredths.
TOLERANCES = {"float32": TOLERANCE, "bfloat16": 0.1, "float16": 0.02}
# Smallest share of the verification texts that must get the float32 model's labels.
MIN_LABEL_AGREEMENT = 0.995
# The Python of an environment with the TensorFlow of the TensorFlow Serving release in
# serving/.env (make test builds .venv-serving): exports are also checked there.
SERVING_PYTHON_VARIABLE = "TFEMOTION_SERVING_PYTHON"


class ExportVerificationError(RuntimeError):
    """The fresh-process check of an export failed; nothing was published.

    Attributes:
        report: dict. The verification report (``failures`` lists what went wrong).
    """

    def __init__(self, message: str, report: dict[str, Any]):
        super().__init__(message)
        self.report = report


def export_run(run_dir: str | Path, config: ExportConfig, *,
               texts: Optional[Sequence[str]] = None) -> dict[str, Any]:
    """Export the classifier of a ``tfemotion train`` run folder for TensorFlow Serving.

    Reads the run's saved model and its record (data settings, task, maximum length, a
    multi-label run's thresholds; see ``tfemotion.runfolder``), verifies on the run's
    validation texts plus the built-in stress list, and publishes ``BASE/NAME/VERSION``.
    Without ``config.max_length`` the run's maximum length is used.

    Args:
        run_dir: str or Path. The run folder, or the ``OUT`` folder of ``tfemotion run``.
        config: ExportConfig. Base path, name, version, max length, verification, compute
            precision (a bfloat16 or float16 export is verified against the float32 model).
        texts: sequence of str, optional. The texts to verify on, when they are at hand (the
            run's validation texts); default: load the run's data and take its validation
            split (its test split if it has none).

    Returns:
        The report of :func:`export_model`, plus ``run``, ``validation_texts`` and
        ``validation_note``.

    Raises:
        FileNotFoundError: the folder is not a finished run.
        FileExistsError: ``config.version`` already exists.
        ExportVerificationError: the verification failed (nothing is published).
    """
    from tfemotion.runfolder import RunRecord, find_run

    run = find_run(run_dir)
    record = RunRecord.load(run)
    note = None
    if texts is None:
        texts, note = _validation_texts(record.data)
    if config.max_length is None:
        config = config.replace(max_length=record.max_length)
    report = export_model(run.model, config, texts=texts, task=record.task,
                          thresholds=record.thresholds, temperatures=record.temperatures)
    report.update(run=str(run.root), validation_texts=len(texts), validation_note=note)
    return report


def export_model(model_dir: str | Path, config: ExportConfig,
                 texts: Optional[Sequence[str]] = None, task: Optional[Task] = None,
                 thresholds: Optional[Sequence[float]] = None,
                 temperatures: Optional[Sequence[float]] = None) -> dict[str, Any]:
    """Export a saved sequence classifier folder (no run folder needed).

    Args:
        model_dir: str or Path. Folder with a saved classifier and its tokenizer: a
            ``TFAutoModelForSequenceClassification`` checkpoint (``save_pretrained`` output;
            safetensors-only folders work too) or a sentence classifier of the contrastive
            recipe (``tfemotion.models.load_run_model`` reads either).
        config: ExportConfig. Base path, name, version, max length, verification, compute
            precision (a bfloat16 or float16 export is verified against the float32 model).
        texts: sequence of str. Extra texts to verify on (e.g. validation texts), besides the
            stress list. Default: none.
        task: Task, optional. The model's task (a run's); default: read off the model config
            (``tfemotion.checkpoints.model_task``: ``id2label``, ``problem_type``).
        thresholds: sequence of float. A multi-label model's decision threshold per label (a
            run's tuned ones); default 0.5 each.
        temperatures: sequence of float. The calibration (a run's fitted temperatures: one,
            or one per label): every probability the export returns is that of
            ``logits / T``; default ``T = 1``.

    Returns:
        The export record's fields (``labels``, ``problem_type``, ``thresholds``,
        ``max_length``, ``raw_text``, ``unsupported_reason``, ``signatures``, ``precision``,
        ``tokenizer``...) and ``path``, ``base_path``, ``name``, ``version``,
        ``warmup_requests``, ``verification``, ``source``, ``seconds``.

    Raises:
        FileExistsError: ``config.version`` already exists under ``BASE/NAME``.
        ValueError: ``task`` does not fit the model's head, or thresholds for a single-label
            task.
        ExportVerificationError: the verification failed (nothing is published).

    Example:
        >>> import tempfile
        >>> config = ExportConfig(base_path=tempfile.mkdtemp(), verify=False)
        >>> export_model(f"{run_dir}/model", config)["path"].endswith("emotion/1")
        True
    """
    from tfemotion.checkpoints import load_tokenizer, model_task
    from tfemotion.hardware import precision_policy
    from tfemotion.models import load_run_model

    started = time.perf_counter()
    model_root = Path(config.base_path) / config.name
    _check_version_free(model_root, config.version)
    tokenizer = load_tokenizer(str(model_dir))
    model = load_run_model(model_dir)
    task = _checked_task(task or model_task(model.config), model.config)
    thresholds = _thresholds(task, thresholds)
    served = model
    if config.precision != "float32":  # the float32 model stays the reference of verification
        with precision_policy(f"mixed_{config.precision}"):
            served = load_run_model(model_dir)
    temperatures = None if temperatures is None else [float(t) for t in temperatures]
    report = _export(served, tokenizer, config, model_root, list(texts or ()), task, thresholds,
                     reference=model, temperatures=temperatures)
    report["source"] = str(model_dir)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


# The export itself ---------------------------------------------------------------------------


def _export(model: Any, tokenizer: Any, config: ExportConfig, model_root: Path, texts: list[str],
            task: Task, thresholds: Optional[list[float]],
            reference: Optional[Any] = None,
            temperatures: Optional[list[float]] = None) -> dict[str, Any]:
    """Write, verify (against ``reference``, the float32 model; default ``model``) and publish."""
    import tensorflow as tf

    from tfemotion.checkpoints import model_max_length
    from tfemotion.export.graph import serving_module
    from tfemotion.export.manifest import write_manifest
    from tfemotion.export.warmup import WARMUP_TEXTS, write_warmup
    from tfemotion.tokenizers import UnsupportedTokenizerError, from_hf_tokenizer

    max_length = model_max_length(tokenizer, model.config, config.max_length)
    try:
        in_graph, reason = from_hf_tokenizer(tokenizer, max_length), None
    except UnsupportedTokenizerError as error:
        in_graph, reason = None, str(error)
        logger.warning("Exporting the 'encoded' signatures only (ids in, no raw text): %s", reason)
    windows = export_windows(config, max_length, task) if in_graph is not None else None
    module, signatures = serving_module(model, in_graph, task, config.length_group_size,
                                        thresholds, temperatures, windows)
    model_root.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=model_root))
    try:
        tf.saved_model.save(module, str(temporary), signatures=signatures)
        warmup = write_warmup(temporary, config.name, tokenizer, in_graph is not None,
                              list(texts or WARMUP_TEXTS), max_length, config.warmup_batch_sizes)
        record = ExportRecord(
            task=task, max_length=max_length, thresholds=thresholds,
            raw_text=in_graph is not None, unsupported_reason=reason,
            signatures=sorted(signatures), length_group_size=config.length_group_size,
            precision=config.precision, warmup_batch_sizes=list(config.warmup_batch_sizes),
            tensorflow_version=tf.__version__, temperatures=temperatures,
            tokenizer=dict(in_graph.description if in_graph else {},
                           **{"class": type(tokenizer).__name__}),
            **_windows_fields(windows))
        record.save(temporary)
        verification = None
        if config.verify:
            verification = _verify(temporary, reference or model, tokenizer, texts, record,
                                   windows)
            record = record.replace(
                tensorflow_serving_check=_check_with_tensorflow_serving(temporary))
            record.save(temporary)
        write_manifest(temporary)  # last: a copy is complete once the manifest's files are
        os.chmod(temporary, 0o755)  # mkdtemp makes it private; TF Serving may run as another user
        path, version = _publish(temporary, model_root, config.version)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    logger.debug("Exported %s (signatures %s)", path, sorted(signatures))
    return dict(record.to_dict(), path=str(path), base_path=str(config.base_path),
                name=config.name, version=version, warmup_requests=warmup,
                verification=verification)


def export_windows(config: ExportConfig, max_length: int, task: Task) -> Optional[Any]:
    """The export's :class:`~tfemotion.export.graph.Windows`, or None when it truncates.

    Example:
        >>> from tfemotion.task import Task
        >>> export_windows(ExportConfig(), 512, Task(("a", "b")))
        Windows(stride=64, max_windows=2048, pooling='mean')
    """
    from tfemotion.export.graph import Windows
    from tfemotion.tokenizers.windows import default_stride, pooling_for

    if config.long_texts == "truncate":
        return None
    stride = default_stride(max_length) if config.stride is None else config.stride
    return Windows(stride=stride, max_windows=config.max_windows,
                   pooling=pooling_for(task.multi_label))


def _windows_fields(windows: Optional[Any]) -> dict[str, Any]:
    if windows is None:
        return {"long_texts": "truncate"}
    return {"long_texts": "windows", "stride": windows.stride,
            "max_windows": windows.max_windows, "window_pooling": windows.pooling}


def _checked_task(task: Task, model_config: Any) -> Task:
    if task.num_labels != model_config.num_labels:
        raise ValueError(f"the task has {task.num_labels} labels, the model's head "
                         f"{model_config.num_labels}. Received: labels={list(task.label_names)}")
    return task


def _thresholds(task: Task, thresholds: Optional[Sequence[float]]) -> Optional[list[float]]:
    """A multi-label task's decision thresholds (0.5 each unless given); None for single-label."""
    if not task.multi_label:
        if thresholds is not None:
            raise ValueError("thresholds are for multi-label models; this model's task is "
                             f"{task.problem_type}. Received: thresholds={list(thresholds)}")
        return None
    values = ([DEFAULT_THRESHOLD] * task.num_labels if thresholds is None
              else [float(t) for t in thresholds])
    if len(values) != task.num_labels or not all(0.0 < t < 1.0 for t in values):
        raise ValueError(f"thresholds must be one number in (0, 1) per label "
                         f"({task.num_labels}). Received: thresholds={list(thresholds or [])}")
    return values


def _verify(folder: Path, model: Any, tokenizer: Any, texts: list[str],
            record: ExportRecord, windows: Optional[Any] = None) -> dict[str, Any]:
    from tfemotion.export.verification import verify_in_fresh_process

    table = signature_table(multi_label=record.task.multi_label)
    signatures = {k: v for k, v in table.items() if record.raw_text or k in ENCODED_SIGNATURES}
    report = verify_in_fresh_process(folder, model, tokenizer, texts, list(record.labels),
                                     record.max_length, record.raw_text, signatures,
                                     TOLERANCES[record.precision], record.thresholds,
                                     MIN_LABEL_AGREEMENT, record.temperatures, windows)
    if not report.get("passed"):
        raise ExportVerificationError(
            "The export failed verification and was not published: "
            + "; ".join(report.get("failures") or ["no report"]), report)
    return report


_SERVING_CHECK_TIMEOUT = 600  # seconds; loading and warming up takes 5-20 s here


def _check_with_tensorflow_serving(folder: Path) -> Optional[dict[str, Any]]:
    """Load the export in the environment of the TensorFlow Serving release (``make test``
    builds ``.venv-serving`` with its TensorFlow), through the session path, replaying its
    warm-up; None when no such environment is set (``TFEMOTION_SERVING_PYTHON``).

    Raises:
        ExportVerificationError: the export does not load or warm up there.
    """
    import subprocess

    python = os.environ.get(SERVING_PYTHON_VARIABLE)
    if not python:
        logger.info("Not checked against a TensorFlow Serving release: set %s to the Python of "
                    "an environment with its TensorFlow (make test builds .venv-serving)",
                    SERVING_PYTHON_VARIABLE)
        return None
    script = Path(__file__).with_name("servable.py")  # run by path: TensorFlow alone there
    try:
        done = subprocess.run([python, "-I", str(script), str(folder)], capture_output=True,
                              text=True, timeout=_SERVING_CHECK_TIMEOUT,
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
        report = json.loads(done.stdout)
    except subprocess.TimeoutExpired:
        report = {"passed": False, "failures": [
            f"{python} took more than {_SERVING_CHECK_TIMEOUT} s and was stopped"]}
    except OSError as error:  # not an executable, gone
        report = {"passed": False, "failures": [f"cannot run {python}: {error}"]}
    except json.JSONDecodeError:
        report = {"passed": False, "failures": [f"{python} exited with {done.returncode}: "
                                                f"{done.stderr.strip()[-500:]}"]}
    result = {"tensorflow": report.get("tensorflow"),
              "tensorflow_serving": report.get("tensorflow_serving_api"),
              "warmup_records": report.get("warmup_records"), "passed": report.get("passed")}
    if not report.get("passed"):
        raise ExportVerificationError(
            "The export does not load in TensorFlow Serving's TensorFlow "
            f"({result['tensorflow']}); nothing was published: " + "; ".join(
                report.get("failures") or ["no report"]), report)
    logger.info("Checked with TensorFlow %s (TensorFlow Serving %s): loads, warms up",
                result["tensorflow"], result["tensorflow_serving"])
    return result


# Publishing ----------------------------------------------------------------------------------


def _check_version_free(model_root: Path, version: Optional[int]) -> None:
    if version is not None and (model_root / str(version)).exists():
        raise FileExistsError(
            f"{model_root / str(version)} exists; versions are never overwritten. Choose another "
            f"version or leave it unset for the next one ({next_version(model_root)}). "
            f"Received: version={version}")


def _publish(temporary: Path, model_root: Path, version: Optional[int]) -> tuple[Path, int]:
    """Rename the verified folder to its version (atomic on one filesystem)."""
    candidate = version or next_version(model_root)
    while True:
        _check_version_free(model_root, version)
        target = model_root / str(candidate)
        try:
            if not target.exists():
                os.rename(temporary, target)
                return target, candidate
        except OSError:
            if version is not None or not target.exists():
                raise
        candidate += 1  # another export took this number meanwhile


def _validation_texts(data_config: Any) -> tuple[list[str], Optional[str]]:
    """The run's validation texts (test texts if it has none); a note when unavailable."""
    try:
        from tfemotion.data import load_splits

        splits = load_splits(data_config)
    except Exception as error:  # the export still runs on the stress list
        logger.warning("Verifying without the run's validation texts: %s", error)
        return [], f"could not load the run's data: {error}"
    if "validation" in splits:
        return [str(t) for t in splits["validation"]["text"]], None  # the data's column
    if "test" in splits:
        return [str(t) for t in splits["test"]["text"]], "no validation split: used the test split"
    return [], "the run's data has neither a validation nor a test split"
