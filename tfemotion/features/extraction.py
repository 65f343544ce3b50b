"""A transformer as a feature extractor: one pooled hidden-state vector per text.

The book pads every split to its longest text and runs batches of 1000 eagerly; most of that
work is padding. Here texts are tokenized without padding, sorted by length, cut into batches
of similar lengths padded per batch, and run through one ``tf.function`` traced once for every
batch shape (``None`` dimensions in its input signature). Features go back in the original
row order and are cached on disk as ``.npz`` keyed by checkpoint, pooling, maximum length and
the texts themselves.

Example:
    >>> _plan_batches([3, 9, 5, 9], batch_size=2, max_tokens=None, multiple=1)
    [[1, 3], [2, 0]]
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import weakref
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np

from tfemotion.config import FeatureConfig

logger = logging.getLogger(__name__)

_CACHE_FORMAT = 1
# The forward function of each loaded model, per pooling; traced once, kept with the model.
_FORWARDS: "weakref.WeakKeyDictionary[Any, dict[str, Any]]" = weakref.WeakKeyDictionary()

Encoder = Union[str, os.PathLike, tuple]


# region Feature extraction


def extract_features(
    data: Any,
    encoder: Optional[Encoder] = None,
    config: Optional[FeatureConfig] = None,
    *,
    cache_dir: Optional[Union[str, os.PathLike]] = None,
    show_progress: bool = True,
) -> Union[np.ndarray, dict[str, np.ndarray]]:
    """Pooled last hidden states of an encoder, one float32 row per text, in the input order.

    Args:
        data: Dataset, DatasetDict or sequence of str. Datasets need a ``text`` column; a
            DatasetDict gives one array per split.
        encoder: str, PathLike or (model, tokenizer). A checkpoint (hub id or local folder,
            safetensors-only included) or an already loaded TF model and its tokenizer.
            Default: ``config.model``.
        config: FeatureConfig. Pooling, batch size, token budget, maximum length, mixed
            precision (applied when the encoder is loaded from a checkpoint; a model passed in
            keeps the policy it was built with).
        cache_dir: str or PathLike. Folder of cached ``.npz`` features; ``None`` disables the
            cache. Only checkpoints given by name or folder are cached (a model object has no
            stable identity).
        show_progress: bool. Show a tqdm progress bar per split.

    Returns:
        A float32 array ``[n_texts, hidden_size]``, or a dict of them per split.

    Raises:
        TypeError: ``data`` or ``encoder`` is of an unsupported type.
        ValueError: a dataset without a ``text`` column, or ``config.max_length`` above the
            model's limit.

    Example:
        >>> features = extract_features(["i am happy"], checkpoint, show_progress=False)
        >>> features.shape  # the tiny test encoder is 32 wide (MiniLM: 384, DistilBERT: 768)
        (1, 32)
    """
    config = config or FeatureConfig()
    extractor = _Extractor(encoder if encoder is not None else config.model, config, cache_dir)
    if _is_dataset_dict(data):
        return {split: extractor.run(dataset, split, show_progress)
                for split, dataset in data.items()}
    return extractor.run(_as_dataset(data), "texts", show_progress)


class _Extractor:
    """Loads the encoder on the first cache miss, then runs split after split through it."""

    def __init__(self, encoder: Encoder, config: FeatureConfig, cache_dir: Any) -> None:
        self.config = config
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if isinstance(encoder, tuple) and len(encoder) == 2:
            self.model, self.tokenizer = encoder
            self.checkpoint = None
            model_config = getattr(self.model, "config", None)
        elif isinstance(encoder, (str, os.PathLike)):
            from tfemotion.checkpoints import load_tokenizer

            self.checkpoint, self.model = os.path.expanduser(str(encoder)), None
            self.tokenizer = load_tokenizer(self.checkpoint)
            model_config = _model_config(self.checkpoint)
        else:
            raise TypeError("encoder must be a checkpoint (str or path) or a (model, tokenizer) "
                            f"pair. Received: encoder={encoder!r}")
        from tfemotion.checkpoints import model_max_length

        self.max_length = model_max_length(self.tokenizer, model_config, config.max_length)

    def run(self, dataset: Any, split: str, show_progress: bool) -> np.ndarray:
        texts = list(dataset["text"])
        path = self._cache_path(texts)
        if path is not None and path.exists():
            cached = _load_cached(path)
            if cached is not None and len(cached) == len(texts):
                logger.info("Features of %s (%d texts) loaded from %s", split, len(texts), path)
                return cached
        features = self._compute(dataset, split, show_progress)
        if path is not None:
            _save_atomically(path, features)
            logger.info("Features of %s cached in %s", split, path)
        return features

    def _compute(self, dataset: Any, split: str, show_progress: bool) -> np.ndarray:
        from tfemotion.data import tokenize

        if self.model is None:
            from transformers import TFAutoModel

            from tfemotion.checkpoints import load_tf_model
            from tfemotion.hardware import (check_mixed_precision, precision_policy,
                                            suggest_bfloat16)

            check_mixed_precision(self.config.mixed_precision)
            suggest_bfloat16(self.config.mixed_precision,
                             "FeatureConfig(mixed_precision='mixed_bfloat16') (command line: "
                             "--mixed-precision of `baseline`, --baseline-mixed-precision of "
                             "`run`)")
            with precision_policy(self.config.mixed_precision):
                self.model = load_tf_model(TFAutoModel, self.checkpoint)
        encoded = tokenize(dataset.select_columns(["text"]), self.tokenizer, self.max_length)
        ids, lengths = list(encoded["input_ids"]), np.asarray(encoded["length"], dtype=np.int64)
        pad_id = self.tokenizer.pad_token_id or 0
        forward = _forward_fn(self.model, self.config.pooling)
        features: Optional[np.ndarray] = None
        batches = _plan_batches(lengths, self.config.batch_size, self.config.max_tokens,
                                self.config.pad_to_multiple_of)
        from tqdm.auto import tqdm

        with tqdm(total=len(ids), desc=f"Features ({split})", unit="text",
                  disable=not show_progress) as bar:
            for batch in batches:
                input_ids, mask = _pad_batch([ids[i] for i in batch], pad_id,
                                             self.config.pad_to_multiple_of)
                pooled = forward(input_ids, mask).numpy()
                if features is None:
                    features = np.empty((len(ids), pooled.shape[1]), dtype=np.float32)
                features[batch] = pooled
                bar.update(len(batch))
        if features is None:  # no texts: the width is still known from the model
            features = np.empty((0, self.model.config.hidden_size), dtype=np.float32)
        return features

    def _cache_path(self, texts: list[str]) -> Optional[Path]:
        if self.cache_dir is None or self.checkpoint is None:
            return None
        key = {"format": _CACHE_FORMAT, "checkpoint": _checkpoint_identity(self.checkpoint),
               "pooling": self.config.pooling, "max_length": self.max_length,
               "mixed_precision": self.config.mixed_precision,
               "texts": _texts_digest(texts)}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        return self.cache_dir / f"features-{self.config.pooling}-{digest}.npz"


def _forward_fn(model: Any, pooling: str) -> Any:
    """The model's ``tf.function`` from ids and mask to pooled features; traced once per model.

    The input signature has ``None`` batch and length dimensions, so every batch shape runs
    the same concrete function (no retracing).
    """
    per_model = _FORWARDS.setdefault(model, {})
    if pooling not in per_model:
        import tensorflow as tf

        spec = tf.TensorSpec([None, None], tf.int32)
        # A weak reference, so that the cached function does not keep its model alive.
        model_ref = weakref.ref(model)

        @tf.function(input_signature=[spec, spec])
        def forward(input_ids, attention_mask):
            hidden = model_ref()(input_ids=input_ids, attention_mask=attention_mask,
                                 training=False).last_hidden_state
            hidden = tf.cast(hidden, tf.float32)  # pooled in float32 whatever the precision
            if pooling == "cls":
                return hidden[:, 0]
            mask = tf.cast(attention_mask, hidden.dtype)[:, :, None]
            return tf.reduce_sum(hidden * mask, axis=1) / tf.maximum(
                tf.reduce_sum(mask, axis=1), 1e-9)

        per_model[pooling] = forward
    return per_model[pooling]


def _plan_batches(lengths: Sequence[int], batch_size: int, max_tokens: Optional[int],
                  multiple: int) -> list[list[int]]:
    """Row indices per batch: longest texts first, similar lengths together.

    A batch holds at most ``batch_size`` texts and, when ``max_tokens`` is set, at most that
    many padded tokens (always at least one text).
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        size = batch_size
        if max_tokens is not None:
            padded = _round_up(int(lengths[order[start]]), multiple)
            size = max(1, min(batch_size, max_tokens // padded))
        batches.append(order[start:start + size].tolist())
        start += size
    return batches


def _pad_batch(ids: list[list[int]], pad_id: int, multiple: int) -> tuple[np.ndarray, np.ndarray]:
    width = _round_up(max(len(row) for row in ids), multiple)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int32)
    mask = np.zeros((len(ids), width), dtype=np.int32)
    for i, row in enumerate(ids):
        input_ids[i, :len(row)] = row
        mask[i, :len(row)] = 1
    return input_ids, mask


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _model_config(checkpoint: str) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(checkpoint)


def _is_dataset_dict(data: Any) -> bool:
    return isinstance(data, dict) or type(data).__name__ in ("DatasetDict", "IterableDatasetDict")


def _as_dataset(data: Any) -> Any:
    import datasets

    if isinstance(data, datasets.Dataset):
        if "text" not in data.column_names:
            raise ValueError("The dataset needs a 'text' column. "
                             f"Received: column_names={data.column_names}")
        return data
    if isinstance(data, (list, tuple)) and all(isinstance(t, str) for t in data):
        return datasets.Dataset.from_dict({"text": list(data)})
    raise TypeError("data must be a Dataset, a DatasetDict or a list of str. "
                    f"Received: data of type {type(data).__name__}")


# endregion
# region Cache


def _checkpoint_identity(checkpoint: str) -> Any:
    """What names a checkpoint's weights: a hub id, or a folder with its files' sizes and times.

    Rewriting the weights (or the config, or the vocab) of a local folder changes the identity,
    so features of a retrained model are never served from the cache.
    """
    folder = Path(checkpoint)
    if not folder.exists():
        return checkpoint
    files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else [folder]
    return [str(folder.resolve()),
            [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]]


def _texts_digest(texts: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


def _load_cached(path: Path) -> Optional[np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as stored:
            return stored["features"].astype(np.float32, copy=False)
    except (OSError, ValueError, KeyError) as error:
        logger.warning("Ignoring unreadable feature cache %s: %s", path, error)
        return None


def _save_atomically(path: Path, features: np.ndarray) -> None:
    """Write the ``.npz`` to a temporary file in the same folder, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, features=features)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# endregion


# endregion
