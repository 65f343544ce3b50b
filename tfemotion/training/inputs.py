"""``tf.data`` input pipelines: from tokenized splits to the batches a Keras model consumes.

Texts are never padded globally (the book pads every text of a split to the split's longest,
and most of the model's work then goes into padding): training batches group texts of similar
length (``train_dataset``), each padded only to its own longest text. (Evaluation runs over
length-sorted texts: ``tfemotion.evaluation.outputs``.)
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

    ``default``: one unpadded example at a time (``Dataset.to_tf_dataset``), reshuffled every
    epoch, grouped by ``bucket_by_sequence_length`` into batches
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
        >>> data = train_dataset(encoded["train"], tokenizer, FinetuneConfig(batch_size=16), 64)
        >>> data.examples, data.steps >= 240 // 16
        (240, True)
    """
    import tensorflow as tf

    static = hardware is not None and hardware.kind == "tpu"
    if config.recipe == "book-keras":
        data = _book_keras_dataset(encoded, tokenizer, config.batch_size, max_length)
    else:
        data = _bucketed_dataset(encoded, tokenizer.pad_token_id or 0, config.batch_size,
                                 config.seed, static)
    options = tf.data.Options()
    # Every worker reads the whole split and keeps its share of the batches.
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

    examples = _examples(encoded)
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


def _examples(encoded: Any) -> Any:
    """One unpadded example at a time, from ``Dataset.to_tf_dataset`` (``batch_size=None``).

    ``benchmarks/bench_finetune.py --compare-input`` times whole epochs fed this way against
    the same examples sliced in the graph from tensors held in memory: the tensors reach the
    first step ~7 s sooner (the generator fills the shuffle buffer first) and take as long over
    an epoch (208.8 s against 206.5 and 201.6 s on 2 cores), so the datasets library's own
    bridge feeds training.
    """
    return encoded.to_tf_dataset(columns=["input_ids", "attention_mask"], label_cols="label",
                                 batch_size=None, shuffle=False)


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
