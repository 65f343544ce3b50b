"""A sentence encoder with a dense head: encoder -> pooling -> normalization -> logits.

What the contrastive recipe trains (``tfemotion.training.contrastive``) and what every later
stage loads. It answers like transformers' TF sequence classifiers, so evaluation, export,
prediction and anything built on logits take it unchanged:
``model(input_ids=..., attention_mask=..., training=False).logits`` is ``[batch, num_labels]``,
and ``model.config`` is the encoder's transformers config with the task's ``id2label``,
``label2id``, ``num_labels`` (and ``problem_type`` for multi-label data). A logistic
regression head becomes the dense layer: its coefficients are the kernel, its intercepts the
bias, so softmax (or, one-vs-rest, a sigmoid per label) of the logits is its ``predict_proba``.

Saved with ``save_pretrained(folder)``: the encoder as transformers saves it (``config.json``,
``tf_model.h5``; the config also holds ``sentence_classifier``: pooling and head) and the head's
weights in ``head.npz``. ``load_sentence_classifier`` reads it back.

Example:
    >>> import tensorflow as tf
    >>> from tfemotion.task import Task
    >>> model = build_sentence_classifier(checkpoint, Task(("neg", "pos")))
    >>> model.config.id2label, model.pooling.mode
    ({0: 'neg', 1: 'pos'}, 'cls')
    >>> model(input_ids=tf.constant([[2, 40, 3]]), attention_mask=tf.constant([[1, 1, 1]]),
    ...       training=False).logits.shape
    TensorShape([1, 2])
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import tf_keras

from tfemotion.models.pooling import Pooling, checkpoint_pooling, pool
from tfemotion.task import Task

# The key of a saved sentence classifier's config.json that marks it and holds its settings.
CONFIG_KEY = "sentence_classifier"
HEAD_FILE = "head.npz"
FORMAT = 1


class SentenceClassifier(tf_keras.Model):
    """Encoder, pooling, normalization and a dense head, answering like a transformers classifier.

    Args:
        encoder: a transformers TF encoder (``TFAutoModel``: ``TFBertModel``, ``TFMPNetModel``...)
            whose ``config`` carries the task's labels.
        pooling: Pooling. How the hidden states become one vector.
        head: str. What fitted the head, for the record (``logistic_regression``, ``dense``).
    """

    def __init__(self, encoder: Any, pooling: Pooling, head: str = "logistic_regression",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder
        self.pooling = pooling
        self.head_kind = head
        self.head = tf_keras.layers.Dense(int(encoder.config.num_labels), name="head")

    @property
    def config(self) -> Any:
        """The encoder's transformers config, with the task's labels (``id2label``...)."""
        return self.encoder.config

    def embed(self, input_ids: Any, attention_mask: Any = None, training: bool = False) -> Any:
        """The pooled (and normalized) float32 vectors ``[batch, hidden]`` of a batch."""
        import tensorflow as tf

        if attention_mask is None:
            attention_mask = tf.ones_like(input_ids)
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              training=training).last_hidden_state
        return pool(hidden, attention_mask, self.pooling)

    def call(self, input_ids: Any = None, attention_mask: Any = None,
             token_type_ids: Any = None, training: bool = False) -> Any:
        """``TFSequenceClassifierOutput`` with the ``logits``; ``input_ids`` may be a dict of
        the tokenizer's outputs (as ``model.predict`` and ``model(dict(batch))`` pass it).
        ``token_type_ids`` (transformers' pipeline passes them) are all 0 for one text, the
        encoder's default: they are not passed on (MPNet takes none)."""
        from transformers.modeling_tf_outputs import TFSequenceClassifierOutput

        if isinstance(input_ids, dict):
            attention_mask = input_ids.get("attention_mask", attention_mask)
            input_ids = input_ids["input_ids"]
        logits = self.head(self.embed(input_ids, attention_mask, training=training))
        return TFSequenceClassifierOutput(logits=logits)

    def set_head(self, kernel: np.ndarray, bias: np.ndarray, head: Optional[str] = None) -> None:
        """Set the dense head's weights: ``kernel [hidden, num_labels]``, ``bias [num_labels]``.

        Raises:
            ValueError: shapes that do not fit the encoder's width and the labels.
        """
        self.build_once()
        expected = tuple(self.head.kernel.shape)
        kernel, bias = np.asarray(kernel, np.float32), np.asarray(bias, np.float32)
        if kernel.shape != expected or bias.shape != expected[1:]:
            raise ValueError(f"the head needs a kernel of shape {expected} and a bias of shape "
                             f"{expected[1:]}. Received: kernel.shape={kernel.shape}, "
                             f"bias.shape={bias.shape}")
        self.head.set_weights([kernel, bias])
        if head is not None:
            self.head_kind = head

    def build_once(self) -> None:
        """Create every weight (one forward pass on a dummy batch) if not yet done."""
        if not self.head.built:
            import tensorflow as tf

            self(input_ids=tf.constant([[0, 0]], tf.int32),
                 attention_mask=tf.constant([[1, 1]], tf.int32), training=False)

    def save_pretrained(self, folder: str | os.PathLike) -> None:
        """Save encoder, config (with pooling and head settings) and head to ``folder``."""
        self.build_once()
        folder = Path(folder)
        setattr(self.config, CONFIG_KEY, {"format": FORMAT, "pooling": self.pooling.to_dict(),
                                          "head": self.head_kind})
        self.encoder.save_pretrained(str(folder))
        kernel, bias = self.head.get_weights()
        handle, temporary = tempfile.mkstemp(prefix=".head-", suffix=".npz", dir=folder)
        with os.fdopen(handle, "wb") as out:
            np.savez(out, kernel=kernel, bias=bias)
        os.replace(temporary, folder / HEAD_FILE)


def build_sentence_classifier(checkpoint: str, task: Task,
                              pooling: Optional[Pooling] = None) -> SentenceClassifier:
    """A checkpoint's encoder with the task's labels and a dense head (zeros until fitted).

    Args:
        checkpoint: str. Hub id or local folder (safetensors-only included).
        task: Task. Its labels go into the config as ``build_classifier`` puts them.
        pooling: Pooling, optional. Default: ``checkpoint_pooling(checkpoint)``.

    Returns:
        A built ``SentenceClassifier`` whose head outputs zeros.
    """
    from transformers import TFAutoModel

    from tfemotion.checkpoints import load_tf_model

    encoder = load_tf_model(TFAutoModel, checkpoint)
    names = task.label_names
    config = encoder.config
    config.num_labels = task.num_labels  # sets id2label to LABEL_i; the names come next
    config.id2label = dict(enumerate(names))
    config.label2id = {name: i for i, name in enumerate(names)}
    config.problem_type = task.hf_problem_type if task.multi_label else None
    model = SentenceClassifier(encoder, pooling or checkpoint_pooling(checkpoint))
    model.build_once()
    width = int(model.head.kernel.shape[0])
    model.set_head(np.zeros((width, task.num_labels)), np.zeros(task.num_labels))
    return model


def is_sentence_classifier(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a saved ``SentenceClassifier`` (its config says so).

    Example:
        >>> is_sentence_classifier("no/such/folder")
        False
    """
    config = Path(os.path.expanduser(str(folder))) / "config.json"
    if not config.is_file():
        return False
    try:
        return CONFIG_KEY in json.loads(config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False


def load_sentence_classifier(folder: str | os.PathLike) -> SentenceClassifier:
    """Load what ``SentenceClassifier.save_pretrained`` wrote.

    Raises:
        FileNotFoundError: the head's weights are missing.
        ValueError: the folder is not a saved sentence classifier, or was written by a newer
            tfemotion.
    """
    from transformers import TFAutoModel

    from tfemotion.checkpoints import load_tf_model

    folder = Path(os.path.expanduser(str(folder)))
    if not is_sentence_classifier(folder):
        raise ValueError(f"{folder} is not a saved sentence classifier: its config.json has no "
                         f"{CONFIG_KEY!r}. Received: folder={str(folder)!r}")
    head_file = folder / HEAD_FILE
    if not head_file.is_file():
        raise FileNotFoundError(f"{head_file} is missing: the folder holds a sentence "
                                "classifier's encoder without its head")
    encoder = load_tf_model(TFAutoModel, str(folder))
    settings = getattr(encoder.config, CONFIG_KEY)
    if int(settings.get("format", FORMAT)) > FORMAT:
        raise ValueError(f"{folder} was written by a newer tfemotion (sentence classifier format "
                         f"{settings['format']}; this one reads {FORMAT})")
    model = SentenceClassifier(encoder, Pooling.from_dict(settings["pooling"]),
                               str(settings.get("head", "logistic_regression")))
    with np.load(head_file) as weights:
        model.set_head(weights["kernel"], weights["bias"])
    return model
