"""What every in-graph tokenizer shares: its error, the texts it is checked on, added-token
splitting, the special-token template, ragged and RE2 helpers.

The in-graph tokenizers (:mod:`tfemotion.tokenizers.wordpiece` for WordPiece,
:mod:`tfemotion.tokenizers.byte_level_bpe` for byte-level BPE, :mod:`tfemotion.tokenizers.unigram`
for SentencePiece Unigram) turn a
``[batch]`` string tensor into the ``input_ids``/``attention_mask`` of the Hugging Face fast
tokenizer they were built from, with core TensorFlow ops only.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import tensorflow as tf

# Texts every export is checked on: accents, cased text, CJK, emoji, control and zero-width
# characters, NBSP and other spaces, special tokens typed in the text, over-long words and
# texts, the empty string and a 100,000-character string.
STRESS_TEXTS: tuple[str, ...] = (
    "",
    "i feel happy",
    "Héllo Wörld! Ça va? naïve café résumé façade Ångström",
    "THE QUICK Brown fox JUMPS over The Lazy DOG",
    "中文字符和日本語のテキスト 한국어 텍스트 ｶﾀｶﾅ",
    "emoji 😀🎉👍🏽 family 👨‍👩‍👧 flags 🇫🇷🇯🇵 ❤️",
    "zero\u200bwidth\u200cnon\u200djoiner soft\u00adhyphen \ufeffbom ctl\x00\x01\x07\x1b\x7f\x85 "
    "tab\tnew\nline\rcr\x0bvt\x0cff",
    "non\u00a0breaking\u2009thin\u3000ideographic\u202fnarrow\u2028line\u2029para\u1680ogham",
    "ΟΔΥΣΣΕΥΣ ΣΊΣΥΦΟΣ σοφός ς",
    "İstanbul ŞİŞLİ ıiIİ Straße ẞ ǅ ǈ ﬁ ligature ① ＡＢＣ fullwidth ㎏",
    "[CLS] special [SEP] tokens[MASK]in text [UNK] [PAD] [cls] [mask] [[SEP]]",
    "<s>roberta</s> <mask>  <mask>x\u3000<mask> <pad><unk> <S> don't you're WE'LL it's 'd ''s ' 'm",
    "مرحبا بالعالم שָׁלוֹם नमस्ते ไทย Ελληνικά русский ТЕКСТ",
    "e\u0301 a\u0308 o\u0302\u0323 \u0301leading combining n\u0303\u0303",
    "@user http://t.co/AbC #hashtag!!! ...??? ,,, ;-) :D <3 $100 50% a&b",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚 \U00020000\U0002a6d6 \U000e0001tag \U0010fffd private \ue000",
    "i feel " * 400,
    "supercalifragilisticexpialidocious" * 4,
    "a" * 100,
    "b" * 101,
    "x" * 100 + " " + "é" * 100 + " " + "é" * 101,
    "\u0000",
    "   \t\n  ",
    ("i didnt feel humiliated, Ünïcödé «quotes» — dash… 😀 中文 " * 2000)[:100_000],
    "x" * 100_000,
)


# Code points Rust's char::is_whitespace accepts (Unicode White_Space): what the lstrip/rstrip of
# added tokens and the Strip normalizer eat.
WHITE_SPACE: tuple[int, ...] = (*range(0x9, 0xE), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                                0x2028, 0x2029, 0x202F, 0x205F, 0x3000)
# Around added tokens the text is cut with bytes that never occur in UTF-8.
_CUT, _AFTER = b"\xff", b"\xfe"


class UnsupportedTokenizerError(ValueError):
    """The tokenizer has a setting that no in-graph tokenizer reproduces exactly."""


# A tokenizer's __call__: a [batch] string tensor in. Autograph off: its loops are already
# tf.while_loop, and rewriting them only slows the export's tracing.
on_text_batches = tf.function(
    input_signature=[tf.TensorSpec([None], tf.string, name="text")], autograph=False)


def edge_texts(count: int, seed: int = 0, extra: Sequence[str] = ()) -> list[str]:
    """``count`` random strings of 1-8 characters where tokenizers most often disagree.

    The characters come from unassigned (in Python's or the ``regex`` package's Unicode),
    private-use, control and format code points, marks
    that join a grapheme cluster (``Grapheme_Cluster_Break`` Extend, SpacingMark, Prepend,
    ZWJ), ``extra`` (e.g. the one-character keys of a character map) and plain letters,
    punctuation and spaces, next to each other. The parity checks and tests fuzz with them.

    Example:
        >>> texts = edge_texts(3, seed=1)
        >>> len(texts), all(1 <= len(t) <= 8 for t in texts), texts == edge_texts(3, seed=1)
        (3, True, True)
    """
    import random

    rng = random.Random(seed)
    pools = [*_edge_pools(), list("abcz!?.,'-") + [" ", "  "]]
    if extra:
        pools.append(list(extra))
    return ["".join(rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 8)))
            for _ in range(count)]


@functools.lru_cache(maxsize=1)
def _edge_pools() -> tuple[list[str], ...]:
    import unicodedata

    import regex

    everything = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    # Unassigned in either Unicode at hand (Python's, the regex package's): code points the
    # libraries of a tokenizer may see as assigned or not.
    unassigned = sorted(set(regex.findall(r"\p{Cn}", everything)) | {
        c for c in everything if unicodedata.category(c) == "Cn"})
    return (unassigned, *(regex.findall(pattern, everything) for pattern in (
        r"\p{Co}", r"\p{Cc}", r"\p{Cf}",
        r"\p{Grapheme_Cluster_Break=Extend}|\p{Grapheme_Cluster_Break=SpacingMark}"
        r"|\p{Grapheme_Cluster_Break=Prepend}|\p{Grapheme_Cluster_Break=ZWJ}")))


def refuse_unless(ok: bool, family: str, setting: str, value: Any, supported: str) -> None:
    """Raise :class:`UnsupportedTokenizerError` naming the setting the family cannot reproduce.

    Example:
        >>> refuse_unless(True, "byte-level BPE", "normalizer", None, "none")
    """
    if not ok:
        raise UnsupportedTokenizerError(
            f"In-graph {family} cannot reproduce the tokenizer's {setting}={value!r} "
            f"(supported: {supported}); export the 'encoded' signatures instead.")


def template_within(tokenizer: Any, max_length: int) -> tuple[list[int], list[int]]:
    """:func:`special_template`, checked to leave room for a text in ``max_length`` tokens.

    Raises:
        ValueError: ``max_length`` holds no more than the special tokens.
    """
    prefix, suffix = special_template(tokenizer)
    if max_length < len(prefix) + len(suffix):
        raise ValueError(f"max_length must leave room for the special tokens {prefix + suffix}. "
                         f"Received: max_length={max_length}")
    return prefix, suffix


def re2_literal(text: str) -> str:
    """``text`` as an RE2 pattern that matches it literally.

    Example:
        >>> re2_literal("<s>")
        '\\\\x{3C}s\\\\x{3E}'
    """
    return "".join(c if c.isalnum() else f"\\x{{{ord(c):X}}}" for c in text)


def special_template(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after a text's own ids (``[0]``/``[2]`` for RoBERTa).

    Raises:
        UnsupportedTokenizerError: the special tokens are not a fixed prefix and suffix.

    Example:
        >>> special_template(roberta_tokenizer)
        ([0], [2])
    """
    probe = "a b"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start: start + len(plain)] == plain:
            prefix, suffix = full[:start], full[start + len(plain):]
            if tokenizer("")["input_ids"] == prefix + suffix:
                return list(prefix), list(suffix)
    raise UnsupportedTokenizerError(
        "In-graph tokenization needs special tokens that are a fixed prefix and suffix of the "
        f"text's ids. Received: tokenizer({probe!r})['input_ids']={full}")


def repeat_each(values: tf.Tensor, counts: tf.Tensor) -> tf.Tensor:
    """``values[i]`` ``counts[i]`` times, in order, in memory proportional to the result.

    ``tf.repeat`` builds a ``[len(values), max(counts)]`` mask on the way: with one 100,000-
    character word among 20,000 others (a request TensorFlow Serving accepts) that is 2e9
    elements, enough to exhaust a server's memory.

    Example:
        >>> repeat_each(tf.constant([7, 8, 9], tf.int64),
        ...             tf.constant([2, 0, 3], tf.int64)).numpy().tolist()
        [7, 7, 9, 9, 9]
    """
    splits = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(tf.cast(counts, tf.int64))], 0)
    ids = tf.searchsorted(splits[1:], tf.range(splits[-1]), side="right", out_type=tf.int64)
    return tf.gather(values, ids)


def row_ids(rows: tf.RaggedTensor) -> tf.Tensor:
    """Each flat value's row (int64), in memory proportional to the values.

    What ``rows.value_rowids()`` gives; but a ragged tensor made from row splits (as
    ``tf.strings.split`` and ``tf.strings.unicode_split`` make them) computes those with a
    ``[rows, longest row]`` mask: one 100,000-character word among 20,000 others would take
    gigabytes. Every in-graph tokenizer uses this instead.

    Example:
        >>> row_ids(tf.ragged.constant([[1, 2], [], [3]])).numpy().tolist()
        [0, 0, 2]
    """
    splits = tf.cast(rows.row_splits, tf.int64)
    return tf.searchsorted(splits[1:], tf.range(splits[-1]), side="right", out_type=tf.int64)


def with_row_ids(rows: tf.RaggedTensor) -> tf.RaggedTensor:
    """The same ragged tensor, its value rows computed by ``row_ids`` and kept, so that ragged
    ops that need them do not build the ``[rows, longest row]`` mask.

    Example:
        >>> with_row_ids(tf.ragged.constant([["a"], ["b", "c"]])).value_rowids().numpy().tolist()
        [0, 1, 1]
    """
    return tf.RaggedTensor.from_value_rowids(rows.flat_values, row_ids(rows), rows.nrows(),
                                             validate=False)


def positions(rows: tf.RaggedTensor) -> tf.Tensor:
    """Each flat value's position within its row (int64)."""
    return tf.range(tf.size(rows.flat_values, out_type=tf.int64)) - tf.gather(
        rows.row_starts(), row_ids(rows))


def string_table(keys: list, values: list, default: int) -> tf.lookup.StaticHashTable:
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string),
                                            tf.constant(values, tf.int64)),
        default_value=tf.constant(default, tf.int64))


def interleave(plain: tf.RaggedTensor, added: tf.Tensor, is_added: tf.Tensor,
                text_of_segment: tf.Tensor, batch: tf.Tensor) -> tf.RaggedTensor:
    """[batch, ids]: the plain segments' ids and the added tokens' ids in text order."""
    segment = tf.range(tf.size(is_added, out_type=tf.int64))
    plain_segment = tf.boolean_mask(segment, ~is_added)
    added_segment = tf.boolean_mask(segment, is_added)
    plain_owner = tf.gather(plain_segment, row_ids(plain))
    position = positions(plain)
    owner = tf.concat([plain_owner, added_segment], 0)
    order = tf.argsort(owner * (1 << 32) + tf.concat([position, tf.zeros_like(added_segment)], 0),
                       stable=True)
    ids = tf.gather(tf.concat([plain.flat_values, added], 0), order)
    return tf.RaggedTensor.from_value_rowids(ids, tf.gather(text_of_segment,
                                                            tf.gather(owner, order)), nrows=batch)


def white_space_class() -> str:
    """An RE2 character class of :data:`WHITE_SPACE`.

    Example:
        >>> print(white_space_class()[:11])
        [\\x{9}\\x{A}
    """
    return "[" + "".join(f"\\x{{{p:X}}}" for p in WHITE_SPACE) + "]"


def split_added(text: tf.Tensor, added: list[tuple[str, int, bool, bool]]
                ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Cut every text into plain and added-token segments, in order.

    Added tokens ``(content, id, lstrip, rstrip)`` are found leftmost-longest, as the tokenizers
    library does; ``lstrip``/``rstrip`` take the whitespace around them. A text gives
    ``plain (added plain)*``, plain segments possibly empty.

    Returns:
        The segments (added ones stripped to their content), the text each belongs to (int64),
        and which segments are added tokens.

    Example:
        >>> segments, of, is_added = split_added(tf.constant(["a <s>b"]), [("<s>", 0, True, False)])
        >>> [s.decode() for s in segments.numpy()], is_added.numpy().tolist()
        (['a', '<s>', 'b'], [False, True, False])
    """
    if not added:
        return text, tf.range(tf.size(text, out_type=tf.int64)), tf.zeros_like(text, tf.bool)
    white = white_space_class()
    # RE2 takes the leftmost match and, at one position, the first alternative: longest first.
    pattern = "|".join(
        (f"{white}*" if lstrip else "") + re2_literal(content) + (f"{white}*" if rstrip else "")
        for content, _, lstrip, rstrip in sorted(added, key=lambda t: -len(t[0])))
    marked = tf.strings.regex_replace(text, pattern, _CUT + b"\\0" + _AFTER)
    # "plain CUT added AFTER plain CUT added AFTER plain": cut at CUT, then at AFTER.
    pieces = tf.strings.split(marked, sep=_CUT)
    parts = tf.strings.split(pieces.flat_values, sep=_AFTER)
    is_added = (tf.gather(positions(pieces), row_ids(parts)) > 0) & (positions(parts) == 0)
    text_of_segment = tf.gather(row_ids(pieces), row_ids(parts))
    segments = tf.where(is_added, tf.strings.regex_replace(parts.flat_values,
                                                           f"^{white}+|{white}+$", ""),
                        parts.flat_values)
    return segments, text_of_segment, is_added


def positions_in_runs(row_ids: tf.Tensor) -> tf.Tensor:
    """Each element's position within its run of equal (sorted) row ids.

    Example:
        >>> positions_in_runs(tf.constant([0, 0, 1, 3, 3, 3], tf.int64)).numpy().tolist()
        [0, 1, 0, 0, 1, 2]
    """
    index = tf.range(tf.size(row_ids, out_type=tf.int64))
    starts = tf.concat([[True], row_ids[1:] != row_ids[:-1]], 0)[: tf.size(row_ids)]
    return index - last_true_index(starts)


def last_true_index(flags: tf.Tensor) -> tf.Tensor:
    """For each position, the index of the last ``True`` at or before it (-1 if none).

    Example:
        >>> last_true_index(tf.constant([False, True, False, True, False])).numpy().tolist()
        [-1, 1, 1, 3, 3]
    """
    index = tf.range(tf.size(flags, out_type=tf.int64))
    seen = tf.cumsum(tf.cast(flags, tf.int64))
    true_at = tf.concat([[-1], tf.boolean_mask(index, flags)], 0)
    return tf.gather(true_at, seen)


def frame(ids: tf.RaggedTensor, batch: tf.Tensor, prefix_ids: list[int], suffix_ids: list[int],
          pad_id: int) -> dict[str, tf.Tensor]:
    """Add the template's ids around each text, pad to the longest, build the mask.

    Example:
        >>> ids = tf.ragged.constant([[5], []], tf.int64)
        >>> out = frame(ids, tf.constant(2, tf.int64), prefix_ids=[0], suffix_ids=[2], pad_id=1)
        >>> out["input_ids"].numpy().tolist(), out["attention_mask"].numpy().tolist()
        ([[0, 5, 2], [0, 2, 1]], [[1, 1, 1], [1, 1, 0]])
    """
    parts = []
    for fixed in (prefix_ids, None, suffix_ids):
        if fixed is None:
            parts.append(ids)
        elif fixed:
            block = tf.tile(tf.constant([fixed], tf.int64), tf.stack([batch, 1]))
            parts.append(tf.RaggedTensor.from_tensor(block))
    framed = tf.concat(parts, axis=1)
    input_ids = framed.to_tensor(default_value=tf.constant(pad_id, tf.int64))
    mask = tf.sequence_mask(framed.row_lengths(), maxlen=tf.shape(input_ids, out_type=tf.int64)[1])
    return {"input_ids": tf.cast(input_ids, tf.int32), "attention_mask": tf.cast(mask, tf.int32)}
