"""Classifying texts with an export, as TensorFlow Serving would: TensorFlow alone.

``ExportPredictor`` loads a version folder with ``tf.saved_model.load`` and calls its raw-text
signature (``serving_default``); the label names, the problem type and a multi-label export's
decisions come from the export itself (its record and its ``predicted`` output). Nothing of
transformers is imported: this is what ``tfemotion predict`` does with an export, and what bulk
scoring runs on its workers.

Example:
    >>> classify = ExportPredictor(export_dir)
    >>> [result["text"] for result in classify(["i feel happy", "so scared"])]
    ['i feel happy', 'so scared']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tfemotion.export.record import ExportRecord
from tfemotion.export.signatures import PREDICT, PREDICTED, PROBABILITIES, TEXT
from tfemotion.prediction.results import results


class ExportPredictor:
    """A batch of texts in, one result per text out, from an export's ``serving_default``.

    Args:
        version_dir: str or Path. An export version folder (``BASE/NAME/VERSION``).

    Attributes:
        record: ExportRecord. The export's task, thresholds, max length...

    Raises:
        FileNotFoundError: no export record (not written by ``tfemotion export``).
        ValueError: the export has no raw-text signature (its tokenizer could not be exported).
    """

    def __init__(self, version_dir: Any) -> None:
        import tensorflow as tf

        self.path = Path(version_dir)
        self.record = ExportRecord.load(self.path)
        self._loaded = tf.saved_model.load(str(self.path))
        if PREDICT not in self._loaded.signatures or not self.record.raw_text:
            raise ValueError(
                f"{self.path} has no raw-text signature (its tokenizer could not be exported: "
                f"{self.record.unsupported_reason}); classify with the run's saved model instead. "
                f"Received: model={str(self.path)!r}")
        self._signature = self._loaded.signatures[PREDICT]

    def probabilities(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The signature's outputs as arrays: ``probabilities`` (float64) and, for a
        multi-label export, its ``predicted`` decisions."""
        import tensorflow as tf

        outputs = self._signature(**{TEXT: tf.constant(texts, dtype=tf.string)})
        arrays = {PROBABILITIES: outputs[PROBABILITIES].numpy().astype(np.float64)}
        if self.record.task.multi_label:
            arrays[PREDICTED] = outputs[PREDICTED].numpy()
        return arrays

    def __call__(self, texts: list[str]) -> list[dict[str, Any]]:
        """One result per text (see ``tfemotion.prediction.results``)."""
        outputs = self.probabilities(texts)
        return results(texts, outputs[PROBABILITIES], self.record.task,
                       decisions=outputs.get(PREDICTED))
