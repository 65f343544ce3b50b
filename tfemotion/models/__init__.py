"""The classifiers a run saves, and the one function every reader loads them with.

- ``pooling``: how a sentence encoder pools its hidden states, read off its checkpoint;
- ``sentence_classifier``: encoder + pooling + normalization + dense head, the model of the
  contrastive recipe, answering like transformers' sequence classifiers.

``load_run_model`` loads a saved classifier of either kind (``RUN/model``, any
``save_pretrained`` folder, or a hub id): evaluation, export, prediction and the benchmarks call
it rather than a transformers class.

Example:
    >>> load_run_model(f"{run_dir}/model").config.num_labels
    6
"""

from __future__ import annotations

import os
from typing import Any

from tfemotion.models.pooling import Pooling, checkpoint_pooling, pool
from tfemotion.models.sentence_classifier import (SentenceClassifier, build_sentence_classifier,
                                                   is_sentence_classifier,
                                                   load_sentence_classifier)


def load_run_model(model_dir: str | os.PathLike) -> Any:
    """Load a saved sequence classifier: a sentence classifier or a transformers one.

    Args:
        model_dir: str or PathLike. A ``save_pretrained`` folder (``RUN/model``) or a hub id.

    Returns:
        A model whose ``model(input_ids=..., attention_mask=..., training=False).logits`` are
        ``[batch, num_labels]`` and whose ``config`` names the labels.
    """
    from tfemotion.checkpoints import load_tf_model

    if is_sentence_classifier(model_dir):
        return load_sentence_classifier(model_dir)
    from transformers import TFAutoModelForSequenceClassification

    return load_tf_model(TFAutoModelForSequenceClassification, os.fspath(model_dir))


__all__ = ["Pooling", "SentenceClassifier", "build_sentence_classifier", "checkpoint_pooling",
           "is_sentence_classifier", "load_run_model", "load_sentence_classifier", "pool"]
