"""How a sentence encoder turns a text's hidden states into one vector, read off its checkpoint.

A sentence-transformers folder says it in ``modules.json`` (its modules in order: the
transformer, ``Pooling``, often ``Normalize``) and in the pooling module's ``config.json``
(``pooling_mode_mean_tokens``, ``pooling_mode_cls_token``...): all-MiniLM-L6-v2 and
all-mpnet-base-v2 average the real tokens, then normalize to length 1. A checkpoint without
them (a plain BERT) gets its ``[CLS]`` state, normalized, as the book's feature extractor does.

Example:
    >>> checkpoint_pooling("no/such/folder")
    Pooling(mode='cls', normalize=True, source='default: no sentence-transformers modules.json')
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

POOLING_MODES = ("mean", "cls", "max")
MODULES_FILE = "modules.json"
# The flags of a sentence-transformers Pooling module's config.json supported here.
_MODE_FLAGS = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls",
               "pooling_mode_max_tokens": "max"}


@dataclass(frozen=True)
class Pooling:
    """The pooling of a sentence encoder and whether the vector is normalized after it.

    Attributes:
        mode: str. ``mean`` (average of the real tokens' states), ``cls`` (the first token's)
            or ``max`` (element-wise maximum over the real tokens).
        normalize: bool. Scale the pooled vector to length 1.
        source: str. Where the choice comes from (for the run record).
    """

    mode: str = "cls"
    normalize: bool = True
    source: str = "default"

    def __post_init__(self) -> None:
        if self.mode not in POOLING_MODES:
            raise ValueError(f"mode must be one of {POOLING_MODES}. Received: mode={self.mode!r}")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form a saved sentence classifier's config holds.

        Example:
            >>> Pooling.from_dict(Pooling("mean").to_dict())
            Pooling(mode='mean', normalize=True, source='default')
        """
        return {"mode": self.mode, "normalize": self.normalize, "source": self.source}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Pooling":
        """Rebuild from ``to_dict``'s form."""
        return cls(str(values["mode"]), bool(values.get("normalize", True)),
                   str(values.get("source", "default")))


def checkpoint_pooling(checkpoint: str | os.PathLike) -> Pooling:
    """The pooling a checkpoint's sentence-transformers configuration asks for, else ``[CLS]``.

    Args:
        checkpoint: str or PathLike. A local folder (a hub id has no local configuration and
            gets the default).

    Returns:
        A ``Pooling``: from ``modules.json`` and the pooling module's ``config.json`` when the
        folder has them (normalized when a ``Normalize`` module follows), else ``cls``,
        normalized.

    Raises:
        ValueError: the configuration is unreadable or asks for a pooling not supported here
            (the message names the file).

    Example:
        >>> import json, tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "modules.json").write_text(json.dumps([
        ...     {"path": "", "type": "sentence_transformers.models.Transformer"},
        ...     {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
        >>> (folder / "1_Pooling").mkdir()
        >>> _ = (folder / "1_Pooling" / "config.json").write_text(
        ...     json.dumps({"pooling_mode_mean_tokens": True}))
        >>> checkpoint_pooling(folder).mode, checkpoint_pooling(folder).normalize
        ('mean', False)
    """
    folder = Path(os.path.expanduser(str(checkpoint)))
    modules_file = folder / MODULES_FILE
    if not modules_file.is_file():
        return Pooling("cls", True, f"default: no sentence-transformers {MODULES_FILE}")
    modules = _read_json(modules_file)
    if not isinstance(modules, list):
        raise ValueError(f"{modules_file} must hold a list of modules. "
                         f"Received: {type(modules).__name__}")
    types = [str(module.get("type", "")) for module in modules]
    pooling = next((m for m in modules if str(m.get("type", "")).endswith(".Pooling")), None)
    normalize = any(t.endswith(".Normalize") for t in types)
    if pooling is None:
        return Pooling("cls", True, f"default: {modules_file} has no Pooling module")
    config_file = folder / str(pooling.get("path", "")) / "config.json"
    config = _read_json(config_file)
    chosen = sorted(k for k, v in config.items() if k.startswith("pooling_mode_") and v)
    modes = [_MODE_FLAGS[flag] for flag in chosen if flag in _MODE_FLAGS]
    if len(modes) != 1 or len(chosen) != 1:
        raise ValueError(f"{config_file} asks for a pooling not supported here (one of "
                         f"{sorted(_MODE_FLAGS)} must be true, alone). Received: {chosen}")
    return Pooling(modes[0], normalize, f"{MODULES_FILE} and {config_file.parent.name}/"
                                        f"config.json")


def pool(hidden: Any, attention_mask: Any, pooling: Pooling) -> Any:
    """One float32 vector per text from the last hidden states ``[batch, tokens, width]``.

    Padding never counts: mean and max pooling look at the tokens whose mask is 1 only, so a
    text gets the same vector whatever it is padded to.

    Example:
        >>> import tensorflow as tf
        >>> hidden = tf.constant([[[1.0, 0.0], [3.0, 4.0], [9.0, 9.0]]])
        >>> pool(hidden, tf.constant([[1, 1, 0]]), Pooling("mean", False)).numpy().tolist()
        [[2.0, 2.0]]
        >>> pool(hidden, tf.constant([[1, 1, 0]]), Pooling("cls")).numpy().round(2).tolist()
        [[1.0, 0.0]]
    """
    import tensorflow as tf

    hidden = tf.cast(hidden, tf.float32)
    mask = tf.cast(attention_mask, tf.float32)[:, :, None]
    if pooling.mode == "cls":
        vectors = hidden[:, 0]
    elif pooling.mode == "mean":
        vectors = tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(
            tf.reduce_sum(mask, axis=1), 1e-9)
    else:
        vectors = tf.reduce_max(hidden + (mask - 1.0) * 1e9, axis=1)
    return tf.math.l2_normalize(vectors, axis=-1) if pooling.normalize else vectors


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable sentence-transformers configuration: "
                         f"{error}") from error
