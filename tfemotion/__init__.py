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
    # configuration
    "DataConfig": "config",
    "FeatureConfig": "config",
    "FinetuneConfig": "config",
    "ExportConfig": "config",
    "ServingConfig": "config",
    "Schedule": "config",
    "choose_schedule": "config",
    # data
    "load_splits": "data",
    "tokenize": "data",
    "to_dataframe": "data",
    "label_names": "data",
    "DataError": "data",
    "read_texts": "data",
    "save_splits": "data",
    "explore": "exploration",
    "summarize": "exploration",
    # checkpoints
    "load_tokenizer": "checkpoints",
    "load_tf_model": "checkpoints",
    "HubUnreachableError": "checkpoints",
    # feature extraction and the baseline
    "extract_features": "features",
    "run_baseline": "features",
    # fine-tuning (the one-call path and its Keras steps), the run folder
    "train": "finetune",
    "build_classifier": "finetune",
    "compile_classifier": "finetune",
    "save_run": "finetune",
    "history_table": "finetune",
    "train_dataset": "inputs",
    "ValidationMetrics": "callbacks",
    "RunFolder": "runfolder",
    "RunRecord": "runfolder",
    "find_run": "runfolder",
    # evaluation, prediction
    "classification_metrics": "evaluate",
    "plot_confusion_matrix": "evaluate",
    "evaluate_run": "evaluate",
    "predict": "prediction",
    "predict_stream": "prediction",
    "load_predictor": "prediction",
    "load_classifier": "prediction",
    "load_pipeline": "prediction",
    "plot_probabilities": "prediction",
    # export and serving
    "from_hf_tokenizer": "tokenizer",
    "WordPieceTokenizer": "tokenizer",
    "ByteLevelBPETokenizer": "tokenizer_bpe",
    "UnsupportedTokenizerError": "tokenizer",
    "export_run": "export",
    "export_model": "export",
    "ExportVerificationError": "export",
    "ServingClient": "serving",
    "ServingError": "serving",
    "query": "serving",
    "query_stream": "serving",
    "serve": "devserver",
    "start_server": "devserver",
    # the main job
    "run_all": "pipeline",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'tfemotion' has no attribute {name!r}")
