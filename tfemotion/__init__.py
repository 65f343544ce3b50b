"""tfemotion: fine-tune transformer text classifiers with TensorFlow/Keras, serve them with TF Serving.

Importing this package sets ``TF_USE_LEGACY_KERAS=1`` (its one import-time side effect) so
that ``tf.keras`` is Keras 2 (``tf_keras``), the Keras that transformers' TF models are built
with. Without it, TensorFlow >= 2.16 hands out Keras 3 optimizers that a transformers model
rejects ("Could not interpret optimizer identifier"). Public names are re-exported lazily so
that ``import tfemotion`` stays fast and imports TensorFlow only when a stage is used.

Example:
    >>> import os, tfemotion
    >>> os.environ["TF_USE_LEGACY_KERAS"]
    '1'
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings

__version__ = "0.1.0"


def _select_keras_2() -> None:
    if os.environ.get("TF_USE_LEGACY_KERAS") not in (None, "1", "true", "True"):
        warnings.warn(
            "tfemotion sets TF_USE_LEGACY_KERAS=1: transformers' TensorFlow models need Keras 2. "
            f"Received: TF_USE_LEGACY_KERAS={os.environ['TF_USE_LEGACY_KERAS']!r}",
            stacklevel=3,
        )
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if "tensorflow" in sys.modules and "keras.src" in sys.modules and "tf_keras" not in sys.modules:
        warnings.warn(
            "TensorFlow was imported and Keras 3 loaded before tfemotion: `tf.keras` may be Keras 3 "
            "in this process. tfemotion builds everything from `tf_keras`, but import tfemotion "
            "first (or set TF_USE_LEGACY_KERAS=1) if you build Keras objects yourself.",
            stacklevel=3,
        )


_select_keras_2()

# Public API: name -> module that defines it. Resolved on first access.
_EXPORTS = {
    # configuration, the task
    "DataConfig": "config",
    "FeatureConfig": "config",
    "FinetuneConfig": "config",
    "ExportConfig": "config",
    "ServingConfig": "config",
    "AuditConfig": "config",
    "Schedule": "config",
    "choose_schedule": "config",
    "Task": "task",
    # data
    "load_splits": "data.loading",
    "save_splits": "data.loading",
    "task_of": "data.encoding",
    "tokenize": "data.encoding",
    "to_dataframe": "data.encoding",
    "label_names": "data.encoding",
    "DataError": "data.formats",
    "read_texts": "data.texts",
    "explore": "data.exploration",
    "summarize": "data.exploration",
    # checkpoints
    "load_tokenizer": "checkpoints",
    "load_tf_model": "checkpoints",
    "load_run_model": "models",
    "HubUnreachableError": "checkpoints",
    # feature extraction and the baseline
    "extract_features": "features.extraction",
    "run_baseline": "features.baseline",
    # fine-tuning (the one-call path and its Keras steps), the run folder
    "train": "training.finetune",
    "build_classifier": "training.classifier",
    "compile_classifier": "training.classifier",
    "save_run": "training.results",
    "history_table": "training.results",
    "train_dataset": "training.inputs",
    "ValidationMetrics": "training.callbacks",
    "RunFolder": "runfolder",
    "RunRecord": "runfolder",
    "find_run": "runfolder",
    # evaluation, prediction
    "classification_metrics": "evaluation.metrics",
    "plot_confusion_matrix": "evaluation.plots",
    "evaluate_run": "evaluation.evaluate",
    "calibration_metrics": "evaluation.calibration",
    "fit_temperatures": "evaluation.calibration",
    "calibrate_run": "training.calibrate",
    "predict": "prediction.predictor",
    "predict_stream": "prediction.predictor",
    "load_predictor": "prediction.predictor",
    "load_classifier": "prediction.keras_model",
    "load_pipeline": "prediction.keras_model",
    "plot_probabilities": "prediction.chart",
    # export and serving
    "from_hf_tokenizer": "tokenizers.hugging_face",
    "WordPieceTokenizer": "tokenizers.wordpiece",
    "ByteLevelBPETokenizer": "tokenizers.byte_level_bpe",
    "UnigramTokenizer": "tokenizers.unigram",
    "UnsupportedTokenizerError": "tokenizers.common",
    "export_run": "export.exporter",
    "export_model": "export.exporter",
    "ExportVerificationError": "export.exporter",
    "ExportRecord": "export.record",
    "ServingClient": "serving.client",
    "ServingError": "serving.client",
    "query": "serving.client",
    "query_stream": "serving.client",
    "serve": "serving.server",
    "start_server": "serving.server",
    # bulk scoring on Apache Beam (the beam extra)
    "ScoreTexts": "scoring.pipeline",
    "score": "scoring.pipeline",
    # the label audit (the audit extra: cleanlab)
    "audit_labels": "audit.stage",
    # the main job
    "run_all": "pipeline",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'tfemotion' has no attribute {name!r}")
