"""``tf.data`` input pipelines: from tokenized splits to the batches a Keras model consumes.

Texts are never padded globally (the book pads every text of a split to the split's longest,
and most of the model's work then goes into padding): training batches group texts of similar
length (``train_dataset``), evaluation batches run over length-sorted texts
(``sorted_tf_dataset``), and each batch is padded only to its own longest text.
``recipe="book-keras"`` keeps the book's global padding, for comparison.

Example:
    >>> bucket_boundaries(30)
    [9, 17, 25, 33]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from tfemotion.config import FinetuneConfig

# Texts are bucketed by length in steps of this many tokens and padded to the bucket's top.
BUCKET_WIDTH = 8


@dataclass
class TrainData:
    """A repeating training ``tf.data.Dataset`` and the size of one epoch of it."""

    dataset: Any
    steps: int
    examples: int
    padded_tokens: int = 0  # tokens per epoch including padding (what the model computes on)
    real_tokens: int = 0


def train_dataset(encoded: Any, tokenizer: Any, config: FinetuneConfig, max_length: int,
                  hardware: Optional[Any] = None) -> TrainData:
    """The training input pipeline of ``config.recipe``.

    ``default``: one unpadded example at a time, sliced in the graph from the tokens held in
    memory, reshuffled every epoch, grouped by ``bucket_by_sequence_length`` into batches
    of similar length, each padded only to its bucket's top (a multiple of 8), prefetched.
    ``book-keras``: the book's pipeline, every text padded to the split's longest one
    (``padding=True`` over the whole split), then ``to_tf_dataset(batch_size=..., shuffle=True)``.

    Args:
        encoded: datasets.Dataset. The tokenized train split (``input_ids``, ``attention_mask``,
            ``length``, ``label``).
        tokenizer: the model's tokenizer.
        config: FinetuneConfig. ``recipe``, ``batch_size``, ``seed``.
        max_length: int. Truncation length (book recipe).
        hardware: Hardware, optional. On TPU, shapes are static (remainders dropped).

    Returns:
        A ``TrainData`` whose dataset repeats forever; ``steps`` batches make one epoch.

    Example:
        >>> data = train_dataset(encoded["train"], tok, FinetuneConfig(), 512)  # doctest: +SKIP
        >>> data.steps  # doctest: +SKIP
        254
    """
    import tensorflow as tf

    static = hardware is not None and hardware.kind == "tpu"
    if config.recipe == "book-keras":
        data = _book_keras_dataset(encoded, tokenizer, config.batch_size, max_length)
    else:
        data = _bucketed_dataset(encoded, tokenizer.pad_token_id or 0, config.batch_size,
                                 config.seed, static)
    options = tf.data.Options()
    # Every worker reads the in-memory data and keeps its share of the batches.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data.dataset = data.dataset.repeat().prefetch(tf.data.AUTOTUNE).with_options(options)
    return data


def bucket_boundaries(longest: int, width: int = BUCKET_WIDTH) -> list[int]:
    """Bucket boundaries for ``bucket_by_sequence_length``: texts of 1..8 tokens, 9..16, ...

    Example:
        >>> bucket_boundaries(20)
        [9, 17, 25]
    """
    return list(range(width + 1, longest + width + 1, width))


def _bucketed_dataset(encoded: Any, pad_id: int, batch_size: int, seed: int,
                      static: bool) -> TrainData:
    import tensorflow as tf

    lengths = np.asarray(encoded["length"])
    boundaries = bucket_boundaries(int(lengths.max()))
    bucket_of = np.searchsorted(boundaries, lengths, side="right")
    counts = np.bincount(bucket_of, minlength=len(boundaries) + 1)
    full, rest = counts // batch_size, counts % batch_size
    steps = int(full.sum() + (0 if static else (rest > 0).sum()))
    kept = counts - rest if static else counts
    padded = int(sum(kept[b] * (boundaries[b] - 1) for b in range(len(boundaries))))

    examples = _in_memory_examples(encoded, lengths)
    pad = tf.constant(pad_id, tf.int64), tf.constant(0, tf.int64)
    no_label = tf.constant(0, examples.element_spec[1].dtype)  # ids, or multi-hot floats
    dataset = (
        examples
        .shuffle(len(encoded), seed=seed, reshuffle_each_iteration=True)
        .bucket_by_sequence_length(
            lambda features, label: tf.shape(features["input_ids"])[0],
            bucket_boundaries=boundaries,
            bucket_batch_sizes=[batch_size] * (len(boundaries) + 1),
            padding_values=({"input_ids": pad[0], "attention_mask": pad[1]}, no_label),
            pad_to_bucket_boundary=True,
            drop_remainder=static,
        )
    )
    return TrainData(dataset, steps, int(kept.sum()), padded, int(lengths.sum()))


def _in_memory_examples(encoded: Any, lengths: np.ndarray) -> Any:
    """One unpadded example at a time, sliced in the graph from the split's tokens in memory.

    What ``to_tf_dataset(batch_size=None)`` yields, without its Python generator: that pass
    over the split (about 8 s for 16,000 texts) stalled the first training step while the
    shuffle buffer filled.
    """
    import tensorflow as tf

    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    ids = tf.constant(np.concatenate(encoded["input_ids"]).astype(np.int64))
    mask = tf.constant(np.concatenate(encoded["attention_mask"]).astype(np.int64))
    labels = np.asarray(encoded["label"])
    labels = labels.astype(np.float32 if labels.dtype.kind == "f" else np.int64)

    def example(start, length, label):
        return {"input_ids": ids[start: start + length],
                "attention_mask": mask[start: start + length]}, label

    return tf.data.Dataset.from_tensor_slices((starts, lengths.astype(np.int64), labels)).map(
        example, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _book_keras_dataset(encoded: Any, tokenizer: Any, batch_size: int,
                        max_length: int) -> TrainData:
    def pad_globally(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(batch["text"], padding=True, truncation=True, max_length=max_length,
                         return_token_type_ids=False)

    padded = encoded.map(pad_globally, batched=True, batch_size=None, desc="Padding (book recipe)")
    dataset = padded.to_tf_dataset(columns=["input_ids", "attention_mask"], label_cols="label",
                                   shuffle=True, batch_size=batch_size)
    steps = int(dataset.cardinality())
    width = len(padded[0]["input_ids"])
    return TrainData(dataset, steps, len(encoded), len(encoded) * width,
                     int(np.sum(encoded["length"])))


def sorted_tf_dataset(dataset: Any, tokenizer: Any, batch_size: int) -> Any:
    """A ``tf.data`` pipeline over a tokenized split in its given order, padded per batch.

    Built with ``Dataset.to_tf_dataset`` and ``DataCollatorWithPadding`` (padding to a
    multiple of 8, which keeps the number of distinct shapes small for compiled functions).

    Example:
        >>> tf_dataset = sorted_tf_dataset(encoded["test"], tokenizer, 64)  # doctest: +SKIP
    """
    from transformers import DataCollatorWithPadding

    collator = DataCollatorWithPadding(tokenizer, return_tensors="np", pad_to_multiple_of=8)
    keep = [c for c in dataset.column_names if c not in ("input_ids", "attention_mask")]
    return dataset.remove_columns(keep).to_tf_dataset(
        columns=["input_ids", "attention_mask"], batch_size=batch_size, shuffle=False,
        collate_fn=collator,
    )
