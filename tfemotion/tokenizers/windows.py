"""Long texts read in windows, in the graph: Hugging Face's overflowing tokens, in core ops.

A text longer than the encoder's window is cut into windows of ``max_length - specials`` of its
own tokens, each window starting ``window - stride`` tokens after the previous one (so that
consecutive windows share ``stride`` tokens), the last one ending with the text; each window is
then wrapped in the family's special tokens. These are exactly the ``input_ids`` a Hugging Face
fast tokenizer gives with ``truncation=True, max_length=L, stride=S,
return_overflowing_tokens=True``, and ``text`` is its ``overflow_to_sample_mapping``
(the tokenizers library's ``Encoding::truncate``: windows start at ``0, step, 2 step...`` and
stop at the first that reaches the text's end).

A request may hold at most ``max_windows`` windows in all: past that the graph fails with
INVALID_ARGUMENT and a message that says so, as for TF Serving's other request caps; texts are
only tokenized as far as that cap can reach, so a 100,000-character text costs no more than
the cap allows.

Example:
    >>> from tfemotion.tokenizers import from_hf_tokenizer
    >>> in_graph = from_hf_tokenizer(tokenizer, max_length=32)  # a BERT tokenizer
    >>> out = text_windows(in_graph, tf.constant(["i feel " * 40, "hi"]), stride=4, max_windows=64)
    >>> out["windows"].numpy().tolist()  # 80 tokens in windows of 30 starting 26 apart
    [3, 1]
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfemotion.tokenizers.common import frame, repeat_each, row_ids

# Keys of text_windows' answer besides input_ids and attention_mask.
TEXT_OF_WINDOW, WINDOWS = "text", "windows"


def default_stride(max_length: int) -> int:
    """The overlap of windows when none is given: ``max_length // 8`` (64 at 512), small enough
    that a 1,000-token text takes 3 windows, the last of them short.

    Example:
        >>> default_stride(512), default_stride(64)
        (64, 8)
    """
    return max_length // 8


def window_size(in_graph: Any) -> int:
    """A window's own tokens: the tokenizer's ``max_length`` less its special tokens.

    Example:
        >>> from tfemotion.tokenizers import from_hf_tokenizer
        >>> window_size(from_hf_tokenizer(tokenizer, max_length=32))  # [CLS] ... [SEP]
        30
    """
    return in_graph.max_length - len(in_graph.prefix_ids) - len(in_graph.suffix_ids)


def check_stride(stride: int, window: int) -> None:
    """Raise ValueError unless ``0 <= stride < window`` (windows must move forward).

    Example:
        >>> check_stride(128, 510)
    """
    if not 0 <= stride < window:
        raise ValueError(f"stride must be in [0, {window}) (the window's own tokens: the max "
                         f"length less the special tokens). Received: stride={stride}")


def window_count(lengths: tf.Tensor, window: int, stride: int) -> tf.Tensor:
    """How many windows each text of ``lengths`` tokens takes (int64; at least 1).

    Example:
        >>> window_count(tf.constant([0, 30, 31, 80], tf.int64), 30, 4).numpy().tolist()
        [1, 1, 2, 3]
    """
    step = window - stride
    extra = tf.maximum(lengths - window, 0)
    return 1 + (extra + step - 1) // step


def token_limit(window: int, stride: int, max_windows: int) -> int:
    """Tokens a text is read to: one more than ``max_windows`` windows cover, so that a text
    past the cap is seen to be past it without tokenizing all of it.

    Example:
        >>> token_limit(30, 4, 3)  # windows at 0, 26, 52: up to token 82
        83
    """
    return window + (max_windows - 1) * (window - stride) + 1


def cut_windows(ids: tf.RaggedTensor, window: int, stride: int) -> dict[str, tf.Tensor]:
    """[texts, tokens] ids -> ``windows``: [all windows, tokens] ragged ids, ``text``: each
    window's text (int64), ``count``: windows per text (int64).

    Example:
        >>> out = cut_windows(tf.ragged.constant([[1, 2, 3, 4, 5], []], tf.int64), 3, 1)
        >>> out["windows"].to_list(), out["text"].numpy().tolist()
        ([[1, 2, 3], [3, 4, 5], []], [0, 0, 1])
    """
    step = window - stride
    lengths = ids.row_lengths()
    count = window_count(lengths, window, stride)
    text = repeat_each(tf.range(tf.size(count, out_type=tf.int64)), count)
    first_window = tf.cumsum(count, exclusive=True)
    index = tf.range(tf.size(text, out_type=tf.int64)) - tf.gather(first_window, text)
    start = index * step
    width = tf.minimum(tf.gather(lengths, text) - start, window)
    # Each window's tokens: flat positions start..start+width of its text's row.
    flat_start = tf.gather(ids.row_starts(), text) + start
    window_of_token = repeat_each(tf.range(tf.size(text, out_type=tf.int64)), width)
    offsets = tf.range(tf.reduce_sum(width)) - tf.gather(tf.cumsum(width, exclusive=True),
                                                         window_of_token)
    values = tf.gather(ids.flat_values, tf.gather(flat_start, window_of_token) + offsets)
    windows = tf.RaggedTensor.from_row_lengths(values, width, validate=False)
    return {"windows": windows, "text": text, "count": count}


def text_windows(in_graph: Any, text: tf.Tensor, stride: int,
                 max_windows: int) -> dict[str, tf.Tensor]:
    """Every text of a ``[batch]`` string tensor in windows of the tokenizer's ``max_length``.

    Args:
        in_graph: an in-graph tokenizer of :mod:`tfemotion.tokenizers` (``text_ids``,
            ``prefix_ids``, ``suffix_ids``, ``pad_id``, ``max_length``).
        text: ``[batch]`` strings.
        stride: int. Tokens consecutive windows share (Hugging Face's ``stride``).
        max_windows: int. Most windows the whole batch may take.

    Returns:
        ``input_ids``, ``attention_mask``: int32 ``[windows, longest window]``, each window with
        the special tokens; ``text``: int64 ``[windows]``, the text each window belongs to;
        ``windows``: int64 ``[batch]``, windows per text.

    Raises:
        tf.errors.InvalidArgumentError: (when run) the batch takes more than ``max_windows``.
    """
    window = window_size(in_graph)
    check_stride(stride, window)
    ids = in_graph.text_ids(text, token_limit(window, stride, max_windows))
    cut = cut_windows(ids, window, stride)
    total = tf.size(cut["text"], out_type=tf.int64)
    check = tf.debugging.assert_less_equal(
        total, tf.constant(max_windows, tf.int64),
        message=f"the texts of this request take more than {max_windows} windows of "
                f"{in_graph.max_length} tokens (the export's max_windows cap); send fewer or "
                "shorter texts")
    with tf.control_dependencies([check]):
        total = tf.identity(total)
    framed = frame(cut["windows"], total, in_graph.prefix_ids, in_graph.suffix_ids,
                   in_graph.pad_id)
    return dict(framed, **{TEXT_OF_WINDOW: cut["text"], WINDOWS: cut["count"]})


def pooling_for(multi_label: bool) -> str:
    """How a text's window logits are pooled: ``mean`` for single-label (every window votes);
    ``max`` for multi-label, where a label is in the text when any window shows it (a mean would
    dilute a label that one window of many carries).

    Example:
        >>> pooling_for(False), pooling_for(True)
        ('mean', 'max')
    """
    return "max" if multi_label else "mean"


def pool_windows(values: tf.Tensor, text_of_window: tf.Tensor, texts: tf.Tensor,
                 how: str = "mean") -> tf.Tensor:
    """``[windows, k]`` values -> ``[texts, k]``: each text's ``mean`` or ``max`` over its
    windows.

    Example:
        >>> pool_windows(tf.constant([[1.0], [3.0], [5.0]]), tf.constant([0, 0, 1], tf.int64),
        ...              tf.constant(2, tf.int64)).numpy().tolist()
        [[2.0], [5.0]]
    """
    if how == "mean":
        return tf.math.unsorted_segment_mean(values, text_of_window, texts)
    if how == "max":
        return tf.math.unsorted_segment_max(values, text_of_window, texts)
    raise ValueError(f"how must be 'mean' or 'max'. Received: how={how!r}")
