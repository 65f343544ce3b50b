"""The export on Beam's workers: finding it, copying it to the worker, scoring batches of texts.

``ExportModelHandler`` is a Beam ``ModelHandler``: Beam's ``RunInference`` calls ``load_model``
once per worker process and shares the loaded export across the process's threads, batches the
texts (``batch_elements_kwargs``), and calls ``run_inference`` on each batch. The export's
raw-text signature does the rest (the tokenizer is in the graph): workers need TensorFlow and
nothing of transformers.

A batch that fails is scored again text by text, so that one bad text does not fail its
neighbours; a text that still fails gets ``{"error": reason}`` instead of scores.

Example:
    >>> handler = ExportModelHandler(export_dir, max_batch_size=16)
    >>> model = handler.load_model()
    >>> [r.inference["label"] for r in handler.run_inference(["i feel happy"], model)] == [
    ...     model.record.task.label_names[int(model.probabilities(["i feel happy"])[
    ...         "probabilities"][0].argmax())]]
    True
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Iterable, Optional, Sequence

from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from tfemotion.export.record import ExportRecord
from tfemotion.export.signatures import EXPORT_INFO_FILE, PREDICTED, PROBABILITIES
from tfemotion.prediction.saved_model import ExportPredictor

PIPELINE_EXPORTS = "serving"  # OUT/serving/NAME/VERSION: where `tfemotion run` exports


def resolve_export(path: str) -> str:
    """The export version folder that ``path`` names, on any filesystem Beam knows.

    ``path`` may be a version folder (holds ``saved_model.pb``), a model folder (its highest
    version), or the ``OUT`` folder of ``tfemotion run`` (the highest version of its one model
    under ``OUT/serving``).

    Raises:
        FileNotFoundError: none of these; the message says what was looked for.

    Example:
        >>> resolve_export(os.path.dirname(export_dir)) == export_dir
        True
    """
    path = path.rstrip("/")
    if FileSystems.exists(FileSystems.join(path, "saved_model.pb")):
        return path
    for pattern in (FileSystems.join(path, "*", "saved_model.pb"),
                    FileSystems.join(path, PIPELINE_EXPORTS, "*", "*", "saved_model.pb")):
        found = _highest_versions(pattern)
        if len(found) > 1:
            raise FileNotFoundError(f"{path} holds several models ({', '.join(sorted(found))}): "
                                    "pass one model folder or version folder. Received: "
                                    f"model={path!r}")
        if found:
            return next(iter(found.values()))
    raise FileNotFoundError(
        f"{path} is not an export: expected saved_model.pb in it (a version folder), in "
        f"{path}/VERSION (a model folder) or in {path}/{PIPELINE_EXPORTS}/NAME/VERSION (the OUT "
        f"folder of `tfemotion run`). Received: model={path!r}")


def _highest_versions(pattern: str) -> dict[str, str]:
    """``{model folder: its highest version folder}`` among the ``saved_model.pb`` matches."""
    best: dict[str, tuple[int, str]] = {}
    for match in FileSystems.match([pattern])[0].metadata_list:
        version_dir = match.path[: -len("/saved_model.pb")]
        model_dir, _, version = version_dir.rpartition("/")
        if version.isdigit() and int(version) >= best.get(model_dir, (-1, ""))[0]:
            best[model_dir] = (int(version), version_dir)
    return {model: version_dir for model, (_, version_dir) in best.items()}


def read_export_record(version_dir: str) -> ExportRecord:
    """The export record of a version folder on any filesystem (the labels name the output's
    columns before any worker starts)."""
    path = FileSystems.join(version_dir, EXPORT_INFO_FILE)
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"{path} is missing: {version_dir} is not an export written by "
                                "`tfemotion export`")
    with FileSystems.open(path) as handle:
        return ExportRecord.from_dict(json.loads(handle.read().decode("utf-8")))


def local_copy(version_dir: str) -> str:
    """A local folder with the export: the folder itself when local, else a copy in a temporary
    folder of the worker (``tf.saved_model.load`` and the record reader read local files)."""
    if FileSystems.get_scheme(version_dir) in (None, "file"):
        return version_dir
    target = tempfile.mkdtemp(prefix="tfemotion-export-")
    for match in FileSystems.match([FileSystems.join(version_dir, "**")])[0].metadata_list:
        relative = match.path[len(version_dir.rstrip("/")) + 1:]
        destination = os.path.join(target, *relative.split("/"))
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        with FileSystems.open(match.path) as source, open(destination, "wb") as out:
            while block := source.read(1 << 24):
                out.write(block)
    return target


class ExportModelHandler(ModelHandler[str, PredictionResult, ExportPredictor]):
    """Beam's ``ModelHandler`` for a tfemotion export: texts in, one result dict per text out.

    Args:
        export_path: str. An export version folder, on any filesystem Beam knows.
        min_batch_size, max_batch_size: int. The batch sizes Beam's ``BatchElements`` may form.
        progress_dir: str, optional. A local folder where each worker process keeps the count
            of texts it scored (``tfemotion score`` shows the sum on local runs).

    A result is ``{"label", "label_id", "scores": [every label's probability]}`` plus
    ``"labels"`` (the predicted ones) for a multi-label export, or ``{"error": reason}``.
    """

    def __init__(self, export_path: str, *, min_batch_size: int = 1, max_batch_size: int = 64,
                 progress_dir: Optional[str] = None) -> None:
        super().__init__()
        self._export_path = export_path
        self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}
        self._progress_dir = progress_dir
        self._scored = 0
        self._reported_at = 0.0

    def load_model(self) -> ExportPredictor:
        """The export, loaded once per worker process (Beam shares it across threads)."""
        return ExportPredictor(local_copy(self._export_path))

    def run_inference(self, batch: Sequence[str], model: ExportPredictor,
                      inference_args: Optional[dict[str, Any]] = None,
                      ) -> Iterable[PredictionResult]:
        """Score one batch; on failure, each text on its own."""
        texts = list(batch)
        try:
            results = _results(model, texts)
        except Exception:  # noqa: BLE001 - the text-by-text pass finds the culprit
            results = [_one_result(model, text) for text in texts]
        self._report(len(texts))
        return [PredictionResult(text, result, self._export_path)
                for text, result in zip(texts, results)]

    def batch_elements_kwargs(self) -> dict[str, int]:
        return dict(self._batching)

    def get_metrics_namespace(self) -> str:
        return "tfemotion"

    def get_num_bytes(self, batch: Sequence[str]) -> int:
        return sum(len(text.encode("utf-8")) for text in batch)

    def _report(self, count: int) -> None:
        if not self._progress_dir:
            return
        self._scored += count
        now = time.monotonic()
        if now - self._reported_at < 0.5:
            return
        self._reported_at = now
        path = os.path.join(self._progress_dir, f"{os.getpid()}-{id(self)}")
        with open(path + ".tmp", "w") as handle:
            handle.write(str(self._scored))
        os.replace(path + ".tmp", path)

    def flush_progress(self) -> None:
        """Write the count now (the last batches of a worker)."""
        self._reported_at = 0.0
        self._report(0)


def _results(model: ExportPredictor, texts: list[str]) -> list[dict[str, Any]]:
    outputs = model.probabilities(texts)
    task = model.record.task
    names = task.label_names
    rows = []
    for i, probabilities in enumerate(outputs[PROBABILITIES]):
        best = int(probabilities.argmax())
        row = {"label": names[best], "label_id": best,
               "scores": [float(p) for p in probabilities]}
        if task.multi_label:
            row["labels"] = [n for n, on in zip(names, outputs[PREDICTED][i]) if on]
        rows.append(row)
    return rows


def _one_result(model: ExportPredictor, text: str) -> dict[str, Any]:
    try:
        return _results(model, [text])[0]
    except Exception as error:  # noqa: BLE001 - reported per text in the dead-letter output
        return {"error": f"the export failed on this text: {type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''}"[:500]}
