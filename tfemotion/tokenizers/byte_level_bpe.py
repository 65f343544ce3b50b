"""Byte-level BPE tokenization (RoBERTa, DistilRoBERTa, GPT-2) in the graph, core TensorFlow ops only.

:class:`ByteLevelBPETokenizer` turns raw strings into the ``input_ids``/``attention_mask`` that the
Hugging Face fast tokenizer it was built from (:func:`from_hf_bpe`) gives with
``truncation=True, max_length=L``, padded to the longest text of the batch. It reproduces:

* the added tokens (``<s>``, ``<mask>``...) found in the raw text, leftmost-longest, with their
  ``lstrip``/``rstrip`` (Unicode whitespace, as Rust's ``char::is_whitespace``);
* the ``ByteLevel`` pre-tokenizer: ``add_prefix_space``, and GPT-2's split pattern
  ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``. RE2 has no
  look-ahead, so the split is computed from per-character classes (letter, number, whitespace,
  other), read off the tokenizer's own pre-tokenizer one code point at a time so that both agree
  on every Unicode version question; then the bytes of each piece are mapped to GPT-2's 256
  printable symbols;
* BPE merges: every round merges, in every word at once, all leftmost non-overlapping
  occurrences of the word's lowest-ranked pair (what the tokenizers library's priority queue
  does for merge lists learned in order), in a ``tf.while_loop`` over the words still merging;
* the template (``<s> ... </s>`` or none, read off the tokenizer), truncation and padding.

The lookup tables (vocabulary, merges, 256 bytes, character classes) are built once from the
checkpoint and never grow while a server runs. Bytes that are not UTF-8 are read as U+FFFD, as
Python's ``bytes.decode(errors="replace")`` would before a Hugging Face tokenizer sees them.

Settings it cannot reproduce (a normalizer, dropout, ``byte_fallback``, a continuing-subword
prefix, ``use_regex=False``, a vocabulary without the 256 byte symbols, added tokens matched
after normalisation or as single words) raise :class:`UnsupportedTokenizerError` naming the
setting.

Example:
    >>> # roberta_tokenizer: AutoTokenizer.from_pretrained("distilroberta-base"), or any RoBERTa's
    >>> in_graph = from_hf_bpe(roberta_tokenizer, 64)
    >>> ids = in_graph(tf.constant(["I feel great!"]))["input_ids"].numpy()[0].tolist()
    >>> ids == roberta_tokenizer("I feel great!")["input_ids"]
    True
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from tfemotion.tokenizers.common import (WHITE_SPACE, UnsupportedTokenizerError, frame,
                                        interleave, positions, refuse_unless, row_ids,
                                        split_added, string_table, template_within,
                                        on_text_batches)

logger = logging.getLogger(__name__)

_MAX_CODE_POINT = 0x110000
_SURROGATES = range(0xD800, 0xE000)
# Character classes of GPT-2's split pattern.
_LETTER, _NUMBER, _OTHER, _SPACE = range(4)
_NO_MERGE = np.iinfo(np.int64).max
# Contractions of the split pattern (case-sensitive), as code points after the apostrophe.
_SHORT_CONTRACTIONS = [ord(c) for c in "stmd"]
_LONG_CONTRACTIONS = [(ord(a), ord(b)) for a, b in ("re", "ve", "ll")]


def bytes_to_symbols() -> list[str]:
    """GPT-2's printable symbol for each byte value 0-255.

    Printable Latin-1 bytes stand for themselves; the others get the code points from 256 up,
    in byte order.

    Example:
        >>> symbols = bytes_to_symbols()
        >>> symbols[ord("a")], symbols[ord(" ")], symbols[ord("\\n")]
        ('a', 'Ġ', 'Ċ')
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    symbols, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            symbols[byte] = chr(byte)
        else:
            symbols[byte] = chr(256 + extra)
            extra += 1
    return [symbols[b] for b in range(256)]


def from_hf_bpe(tokenizer: Any, max_length: int) -> "ByteLevelBPETokenizer":
    """Build the in-graph equivalent of a Hugging Face fast byte-level BPE tokenizer.

    Args:
        tokenizer: PreTrainedTokenizerFast with a ``BPE`` model and a ``ByteLevel``
            pre-tokenizer (``RobertaTokenizerFast``, ``GPT2TokenizerFast``...).
        max_length: int. Texts are truncated to this many tokens, special tokens included.

    Returns:
        A :class:`ByteLevelBPETokenizer` (a ``tf.Module``, saveable in a SavedModel).

    Raises:
        UnsupportedTokenizerError: a setting the in-graph tokenizer cannot reproduce; the
            message names it.

    Example:
        >>> from_hf_bpe(roberta_tokenizer, max_length=64).max_length
        64
    """
    backend = tokenizer.backend_tokenizer
    spec = json.loads(backend.to_str())
    model, pre = spec["model"], spec.get("pre_tokenizer") or {}
    _refuse_unless(spec.get("normalizer") is None, "normalizer", spec.get("normalizer"),
                   "byte-level BPE tokenizers without a normalizer")
    _refuse_unless(pre.get("type") == "ByteLevel", "pre_tokenizer", pre.get("type"), "ByteLevel")
    _refuse_unless(pre.get("use_regex", True), "pre_tokenizer.use_regex", False, "True")
    for setting, supported in (("dropout", None), ("continuing_subword_prefix", None),
                               ("end_of_word_suffix", None), ("byte_fallback", False)):
        _refuse_unless(model.get(setting) in (supported, ""), f"model.{setting}",
                       model.get(setting), repr(supported))
    vocab = {str(k): int(v) for k, v in model["vocab"].items()}
    missing = [s for s in bytes_to_symbols() if s not in vocab]
    _refuse_unless(not missing, "model.vocab", f"{len(missing)} byte symbols missing "
                   f"(such as {missing[:3]})", "all 256 byte symbols")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    prefix, suffix = template_within(tokenizer, max_length)
    added = _added_tokens(tokenizer)
    return ByteLevelBPETokenizer(
        vocab=vocab, merges=merges, classes=_char_classes(),
        added_tokens=added, add_prefix_space=bool(pre.get("add_prefix_space", False)),
        ignore_merges=bool(model.get("ignore_merges", False)),
        prefix_ids=prefix, suffix_ids=suffix,
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        max_length=max_length)


def _refuse_unless(ok: bool, setting: str, value: Any, supported: str) -> None:
    refuse_unless(ok, "byte-level BPE", setting, value, supported)


def _added_tokens(tokenizer: Any) -> list[tuple[str, int, bool, bool]]:
    """(content, id, lstrip, rstrip) of the added tokens, matched in the raw text first."""
    tokens = []
    for token_id, token in sorted(tokenizer.added_tokens_decoder.items()):
        # Without a normalizer, "normalized" tokens match the raw text all the same.
        if token.single_word or not token.content or any(ord(c) in WHITE_SPACE
                                                         for c in token.content):
            raise UnsupportedTokenizerError(
                "In-graph byte-level BPE supports added tokens without single_word and without "
                f"whitespace in them. Received: added token {token!r}")
        tokens.append((str(token.content), int(token_id), bool(token.lstrip), bool(token.rstrip)))
    return tokens


_CLASSES: dict[str, dict[str, np.ndarray]] = {}


def class_cache_file() -> Path:
    """Where the character classes are cached: they depend only on the tokenizers library.

    ``$TFEMOTION_CACHE`` (default ``~/.cache/tfemotion``)/``gpt2-classes-<tokenizers version>.npz``.

    Example:
        >>> class_cache_file().name.startswith("gpt2-classes-")
        True
    """
    import tokenizers

    folder = Path(os.environ.get("TFEMOTION_CACHE") or Path.home() / ".cache" / "tfemotion")
    return folder / f"gpt2-classes-{tokenizers.__version__}.npz"


def _char_classes() -> dict[str, np.ndarray]:
    """Ranges of code points and their class in GPT-2's split pattern, as tokenizers sees them.

    Probing every code point takes ~15 s, so the table is kept in memory and on disk
    (:func:`class_cache_file`); a cache that cannot be read or written is rebuilt or skipped.
    """
    if not _CLASSES:
        path = class_cache_file()
        try:
            with np.load(path) as saved:
                _CLASSES.update(starts=saved["starts"], kinds=saved["kinds"])
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            _CLASSES.update(_probe_classes())
            _save_classes(path, _CLASSES)
    return _CLASSES


def _probe_classes() -> dict[str, np.ndarray]:
    """Each code point c is probed in ``"a" c``, ``"1" c`` and ``"!" c``: it is a letter,
    number or other character when the pre-tokenizer keeps the pair as one piece; else
    whitespace."""
    from tokenizers.pre_tokenizers import ByteLevel

    splitter = ByteLevel(add_prefix_space=False, use_regex=True)
    points = np.array([p for p in range(_MAX_CODE_POINT) if p not in _SURROGATES], np.int64)
    classes = np.full(_MAX_CODE_POINT, _SPACE, np.int8)
    for lead, kind in (("a", _LETTER), ("1", _NUMBER), ("!", _OTHER)):
        text = "".join(lead + chr(p) + "\n" for p in points)
        starts = np.array([begin for _, (begin, end) in splitter.pre_tokenize_str(text)
                           if end - begin == 2 and text[begin] == lead], np.int64)
        classes[points[starts // 3]] = kind
    change = np.flatnonzero(np.r_[True, classes[1:] != classes[:-1]])
    return {"starts": change.astype(np.int32), "kinds": classes[change].astype(np.int32)}


def _save_classes(path: Path, classes: dict[str, np.ndarray]) -> None:
    """Write the table atomically; a read-only home only costs the probe next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz")
        with os.fdopen(handle, "wb") as out:
            np.savez(out, **classes)
        os.replace(temporary, path)
    except OSError as error:
        logger.debug("Character classes not cached in %s: %s", path, error)


class ByteLevelBPETokenizer(tf.Module):
    """Raw strings to byte-level BPE ``input_ids``/``attention_mask``, in the graph.

    Build it with :func:`from_hf_bpe`. Calling it on a ``[batch]`` string tensor returns int32
    ``input_ids`` and ``attention_mask`` of shape ``[batch, longest text in the batch]``.

    Example:
        >>> texts = ["", "I feel great!"]
        >>> out = from_hf_bpe(roberta_tokenizer, 64)(tf.constant(texts))
        >>> out["input_ids"].shape[1] == max(len(roberta_tokenizer(t)["input_ids"]) for t in texts)
        True
        >>> int(out["attention_mask"].numpy()[0].sum())  # "": <s></s>
        2
    """

    def __init__(self, vocab: dict[str, int], merges: list[str], classes: dict[str, np.ndarray],
                 added_tokens: list[tuple[str, int, bool, bool]], add_prefix_space: bool,
                 ignore_merges: bool, prefix_ids: list[int], suffix_ids: list[int], pad_id: int,
                 max_length: int, name: Optional[str] = None):
        super().__init__(name=name)
        self.max_length = int(max_length)
        self._prefix_ids, self._suffix_ids = list(prefix_ids), list(suffix_ids)
        self._limit = self.max_length - len(prefix_ids) - len(suffix_ids)
        self.pad_id = int(pad_id)
        self._add_prefix_space, self._ignore_merges = add_prefix_space, ignore_merges
        self._description = json.dumps({
            "family": "byte-level BPE", "max_length": self.max_length, "vocab_size": len(vocab),
            "merges": len(merges), "add_prefix_space": add_prefix_space,
            "template": [prefix_ids, suffix_ids], "added_tokens": [t[0] for t in added_tokens]})
        self._vocab = string_table(list(vocab), list(vocab.values()), -1)
        # (A key no pair can have stands in for an empty merge list: tables cannot be empty.)
        self._ranks = string_table(merges or [""], list(range(len(merges))) or [_NO_MERGE],
                                   _NO_MERGE)
        # Each byte to the code point of its symbol.
        self._byte_symbols = string_table([bytes([b]) for b in range(256)],
                                          [ord(c) for c in bytes_to_symbols()], -1)
        self._starts = tf.constant(classes["starts"], tf.int32)
        self._kinds = tf.constant(classes["kinds"], tf.int32)
        self._added = string_table([t[0] for t in added_tokens], [t[1] for t in added_tokens], -1) \
            if added_tokens else None
        self._added_tokens = list(added_tokens)

    @property
    def description(self) -> dict[str, Any]:
        """The settings reproduced: family, template, max_length, vocabulary and merges."""
        return json.loads(self._description)

    @on_text_batches
    def __call__(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        return frame(self.text_ids(text, self._limit), tf.shape(text, out_type=tf.int64)[0],
                     self._prefix_ids, self._suffix_ids, self.pad_id)

    @property
    def prefix_ids(self) -> list[int]:
        """The ids before a text's own (``<s>``)."""
        return list(self._prefix_ids)

    @property
    def suffix_ids(self) -> list[int]:
        """The ids after a text's own (``</s>``)."""
        return list(self._suffix_ids)

    def text_ids(self, text: tf.Tensor, limit: int) -> tf.RaggedTensor:
        """[batch] strings -> [batch, tokens] int64 ids without special tokens, the first
        ``limit`` tokens of each text (what ``add_special_tokens=False`` gives, cut there)."""
        text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace",
                                            replacement_char=0xFFFD)
        segments, text_of_segment, is_added = split_added(text, self._added_tokens)
        batch = tf.shape(text, out_type=tf.int64)[0]
        # Each piece gives at least one token: pieces past the limit would be cut anyway.
        pieces = self._pieces(tf.boolean_mask(segments, ~is_added))[:, :limit]
        words = self._merge(pieces.flat_values)
        tokens_per_segment = tf.math.unsorted_segment_sum(words.row_lengths(),
                                                          row_ids(pieces), pieces.nrows())
        plain_ids = tf.RaggedTensor.from_row_lengths(self._vocab.lookup(words.flat_values),
                                                     tokens_per_segment)
        if self._added is not None:
            added_ids = self._added.lookup(tf.boolean_mask(segments, is_added))
        else:
            added_ids = tf.zeros([0], tf.int64)
        return interleave(plain_ids, added_ids, is_added, text_of_segment, batch)[:, :limit]

    # Pre-tokenization -----------------------------------------------------------------------

    def _pieces(self, segments: tf.Tensor) -> tf.RaggedTensor:
        """[segments] plain text -> [segments, pieces] byte-symbol strings, GPT-2's split."""
        if self._add_prefix_space:
            starts_with_space = tf.strings.substr(segments, 0, 1) == " "
            segments = tf.where(starts_with_space | (segments == ""), segments,
                                tf.strings.join([" ", segments]))
        chars = tf.strings.unicode_decode(segments, "UTF-8")
        points, rows = chars.flat_values, row_ids(chars)
        kind = tf.gather(self._kinds, tf.searchsorted(self._starts, points, side="right") - 1)
        start = _piece_starts(points, kind, rows)
        piece_of_char = tf.cumsum(tf.cast(start, tf.int64)) - 1
        first_char = tf.boolean_mask(tf.range(tf.size(points, out_type=tf.int64)), start)
        piece_chars = tf.RaggedTensor.from_value_rowids(points, piece_of_char,
                                                        nrows=tf.size(first_char, out_type=tf.int64))
        piece_text = tf.strings.unicode_encode(piece_chars, "UTF-8")
        symbols = tf.ragged.map_flat_values(self._byte_symbols.lookup,
                                            tf.strings.bytes_split(piece_text))
        joined = tf.strings.unicode_encode(tf.cast(symbols, tf.int32), "UTF-8")
        return tf.RaggedTensor.from_value_rowids(joined, tf.gather(rows, first_char),
                                                 nrows=chars.nrows())

    # BPE ------------------------------------------------------------------------------------

    def _merge(self, words: tf.Tensor) -> tf.RaggedTensor:
        """[words] byte-symbol strings -> [words, tokens] strings, after every BPE merge."""
        symbols = tf.strings.unicode_split(words, "UTF-8")
        count = tf.size(words, out_type=tf.int64)
        if self._ignore_merges:  # whole words of the vocabulary skip the merges
            whole = tf.gather(self._vocab.lookup(words) >= 0, row_ids(symbols))
            first = positions(symbols) == 0
            values = tf.where(whole, tf.gather(words, row_ids(symbols)), symbols.flat_values)
            keep = ~whole | first
            symbols = tf.RaggedTensor.from_value_rowids(
                tf.boolean_mask(values, keep), tf.boolean_mask(row_ids(symbols), keep),
                nrows=count)
        empty_s, empty_i = tf.zeros([0], tf.string), tf.zeros([0], tf.int64)

        def body(active, values, lengths, out_word, out_position, out_symbol):
            rows = tf.RaggedTensor.from_row_lengths(values, lengths)
            n_rows = tf.size(lengths, out_type=tf.int64)
            left, right = rows[:, :-1], rows[:, 1:]
            pair_row = row_ids(left)
            rank = self._ranks.lookup(tf.strings.join([left.flat_values, right.flat_values],
                                                      separator=" "))
            best = tf.math.unsorted_segment_min(rank, pair_row, n_rows)
            done = best == _NO_MERGE
            # Words with nothing left to merge leave the loop with their tokens.
            symbol_row = row_ids(rows)
            position = positions(rows)
            leaving = tf.gather(done, symbol_row)
            out_word = tf.concat([out_word, tf.boolean_mask(tf.gather(active, symbol_row),
                                                            leaving)], 0)
            out_position = tf.concat([out_position, tf.boolean_mask(position, leaving)], 0)
            out_symbol = tf.concat([out_symbol, tf.boolean_mask(values, leaving)], 0)
            # The others merge every leftmost non-overlapping occurrence of their best pair.
            chosen = _leftmost_non_overlapping((rank == tf.gather(best, pair_row)) &
                                               (rank != _NO_MERGE), pair_row)
            pair_index = tf.range(tf.size(rank, out_type=tf.int64))
            left_symbol = tf.boolean_mask(pair_index + pair_row, chosen)
            merged = tf.strings.join([tf.gather(values, left_symbol),
                                      tf.gather(values, left_symbol + 1)])
            values = tf.tensor_scatter_nd_update(values, left_symbol[:, None], merged)
            removed = tf.scatter_nd((left_symbol + 1)[:, None], tf.ones_like(left_symbol, tf.bool),
                                    tf.shape(values, out_type=tf.int64))
            keep = ~removed & ~leaving
            lengths = tf.math.unsorted_segment_sum(tf.cast(keep, tf.int64), symbol_row, n_rows)
            staying = ~done
            return (tf.boolean_mask(active, staying), tf.boolean_mask(values, keep),
                    tf.boolean_mask(lengths, staying), out_word, out_position, out_symbol)

        loop = (tf.range(count), symbols.flat_values, symbols.row_lengths(), empty_i, empty_i,
                empty_s)
        invariants = tuple(tf.TensorShape([None]) for _ in loop)
        *_, out_word, out_position, out_symbol = tf.while_loop(
            lambda active, *_: tf.size(active) > 0, body, loop, shape_invariants=invariants)
        order = tf.argsort(out_word * (1 << 32) + out_position, stable=True)
        return tf.RaggedTensor.from_value_rowids(tf.gather(out_symbol, order),
                                                 tf.gather(out_word, order), nrows=count)


def _piece_starts(points: tf.Tensor, kind: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
    """Where each piece of GPT-2's split pattern starts, per character of the flat segments.

    ``'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+``
    read left to right: runs of one class; a space before a non-space run joins it; a whitespace
    run followed by a non-space leaves its last character to the next piece; an apostrophe that
    starts a piece and is followed by s/t/m/d/re/ve/ll takes those letters alone.
    """
    def at(values: tf.Tensor, by: int, fill: int) -> tf.Tensor:
        """values[i + by] where that character is in the same segment, else ``fill``."""
        size = tf.size(values, out_type=tf.int64)
        index = tf.range(size) + by
        clipped = tf.clip_by_value(index, 0, tf.maximum(size - 1, 0))
        inside = (index >= 0) & (index < size) & (tf.gather(rows, clipped) == rows)
        return tf.where(inside, tf.gather(values, clipped), fill)

    next_kind, prev_kind = at(kind, 1, -1), at(kind, -1, -1)
    next_point, after_next = at(points, 1, -1), at(points, 2, -1)
    # A space directly before a non-space joins the piece that follows.
    joins_next = (points == ord(" ")) & (next_kind >= 0) & (next_kind != _SPACE)
    joined_prev = at(tf.cast(joins_next, tf.int32), -1, 0) > 0
    space_start = (kind == _SPACE) & ((prev_kind != _SPACE) |
                                      ((next_kind >= 0) & (next_kind != _SPACE)))
    other_start = (kind != _SPACE) & ~joined_prev & (prev_kind != kind)
    # Contractions: an apostrophe that starts a piece takes the letters after it alone.
    short = tf.reduce_any(next_point[:, None] == tf.constant(_SHORT_CONTRACTIONS)[None, :], 1)
    long = tf.zeros_like(short)
    for first, second in _LONG_CONTRACTIONS:
        long = long | ((next_point == first) & (after_next == second))
    short = tf.cast((points == ord("'")) & other_start & short, tf.int32)
    long = tf.cast((points == ord("'")) & other_start & long, tf.int32)
    inside = (at(short + long, -1, 0) + at(long, -2, 0)) > 0
    after = (at(short, -2, 0) + at(long, -3, 0)) > 0
    return (space_start | other_start | after) & ~inside


def _leftmost_non_overlapping(match: tf.Tensor, pair_row: tf.Tensor) -> tf.Tensor:
    """Of consecutive matching pairs in a word (``a a a``), every other one from the left."""
    index = tf.range(tf.size(match, out_type=tf.int64))
    follows = tf.concat([[False], match[:-1] & (pair_row[1:] == pair_row[:-1])], 0)
    run_start = match & ~follows
    run = tf.cumsum(tf.cast(run_start, tf.int64)) - 1
    runs = tf.reduce_sum(tf.cast(run_start, tf.int64))
    first = tf.math.unsorted_segment_min(tf.boolean_mask(index, match),
                                         tf.boolean_mask(run, match), runs)
    offset = index - tf.gather(tf.concat([first, [0]], 0), tf.where(match, run, runs))
    return match & (offset % 2 == 0)
