"""BERT's WordPiece in the graph, in core TensorFlow ops.

TensorFlow Serving runs a SavedModel without Python, and its stock binaries link tensorflow-text
ops only at the version each release pins (2.11 lacked ``FastBertNormalize``, 2.12-2.19
``RoundRobinTrim``), so the in-graph tokenizers use core ops alone. :class:`WordPieceTokenizer` turns raw strings into the
``input_ids``/``attention_mask`` a Hugging Face fast BERT-family tokenizer (BERT, DistilBERT,
MiniLM, ELECTRA...) would give with ``truncation=True, max_length=L``, padded only to the
longest text of the batch. It reproduces, token for token:

* the added tokens (``[CLS]``, ``[MASK]``... typed in the text), matched leftmost-longest in
  the raw text and kept verbatim; those matched after normalisation (``normalized=True``, as
  MPNet's ``<unk>``) are found in the normalised text, so ``<UNK>`` is one as well; ``lstrip``
  and ``rstrip`` (MPNet's ``<mask>``) change nothing here, since BERT's pre-tokenizer splits at
  the spaces they would take;
* ``BertNormalizer``: clean-up, CJK spacing, NFD + accent stripping, lower-casing. Rather than
  re-implement them with ``unicodedata`` (whose Unicode version differs from the tokenizers
  library's), the table is read off the tokenizer's own normalizer, one code point at a time,
  and kept as ranges searched with ``tf.searchsorted``;
* ``BertPreTokenizer``: whitespace and punctuation split (punctuation gets spaces around it in
  the table, so one split on ``" "`` is enough: no ``tf.strings.lower``, whose Greek final
  sigma differs, and no reliance on ``tf.strings.split``'s notion of whitespace);
* ``WordPiece``: greedy longest-match-first over all words at once in a ``tf.while_loop``,
  ``[UNK]`` for words longer than ``max_input_chars_per_word`` or with no match;
* ``[CLS] ... [SEP]`` around the first ``max_length - 2`` tokens (``<s> ... </s>`` for MPNet,
  whatever the tokenizer puts around a text).

Known limits: NFD's canonical reordering of combining marks is not reproduced (it can only
matter for the 25 spacing marks with a non-zero combining class, such as some viramas and
musical symbols, written out of canonical order, and only if the vocabulary holds them);
several added tokens matched after normalisation are looked for one after the other (longest
first), not all at once, which differs only if one's normalised form overlaps another's in a
text; added tokens with ``single_word`` raise :class:`UnsupportedTokenizerError`.

Example:
    >>> in_graph = from_hf_wordpiece(tokenizer, max_length=64)  # a Hugging Face BERT tokenizer
    >>> ids = in_graph(tf.constant(["I feel happy!"]))["input_ids"].numpy()[0].tolist()
    >>> ids == tokenizer("I feel happy!")["input_ids"]
    True
"""

from __future__ import annotations

import json
import logging
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from tfemotion.tokenizers.common import (UnsupportedTokenizerError, frame, on_text_batches,
                                         re2_literal, row_ids)

logger = logging.getLogger(__name__)

# How a code point is rewritten before the split on " " (one kind per range of code points).
_IDENTITY, _REMOVED, _SPACE, _PADDED, _EXPLICIT = range(5)
_MAX_CODE_POINT = 0x110000
_SURROGATES = (0xD800, 0xE000)
_PROBE_SEPARATOR = "#"
_PROBE_BLOCK = 2048  # divides the surrogate range (0xD800-0xDFFF)
# Added tokens found in the text are wrapped in these code points (plane-16 private use, which
# BERT's clean-up removes from user text): what lies between them is kept verbatim as one word.
_OPEN, _CLOSE = 0x100000, 0x100001
# A word never yields more tokens than it has characters (<= max_input_chars_per_word).
_STEP_LIMIT = 1 << 20


def from_hf_wordpiece(tokenizer: Any, max_length: int) -> "WordPieceTokenizer":
    """The in-graph equivalent of a Hugging Face fast WordPiece tokenizer (BERT, DistilBERT,
    MiniLM, ELECTRA); ``tfemotion.tokenizers.from_hf_tokenizer`` picks it for them.

    Raises:
        UnsupportedTokenizerError: a normalizer, pre-tokenizer, template or added token it
            cannot reproduce; the message names it.
        ValueError: ``max_length`` leaves no room for ``[CLS]`` and ``[SEP]``.

    Example:
        >>> from_hf_wordpiece(tokenizer, max_length=64).description["lowercase"]
        True
    """
    backend = _check_supported(tokenizer)
    if max_length < 2:
        raise ValueError(
            "max_length must leave room for [CLS] and [SEP] (>= 2). "
            f"Received: max_length={max_length}"
        )
    added = _added_tokens(tokenizer)
    vocab = dict(backend.get_vocab(with_added_tokens=False))
    vocab.update({chr(_OPEN) + content: token_id for content, token_id, _ in added})
    table = _char_table(backend.normalizer, backend.pre_tokenizer)
    model = backend.model
    normalizer = backend.normalizer
    in_graph = WordPieceTokenizer(
        vocab=vocab,
        char_table=table,
        added_tokens=[content for content, _, normalized in added if not normalized],
        unk_token=model.unk_token,
        prefix=model.continuing_subword_prefix,
        max_chars_per_word=model.max_input_chars_per_word,
        cls_id=tokenizer.cls_token_id,
        sep_id=tokenizer.sep_token_id,
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        max_length=max_length,
        description={
            "lowercase": bool(normalizer.lowercase),
            "strip_accents": normalizer.strip_accents,
            "clean_text": bool(normalizer.clean_text),
            "handle_chinese_chars": bool(normalizer.handle_chinese_chars),
        },
    )
    in_graph.match_normalized([content for content, _, normalized in added if normalized])
    return in_graph


class WordPieceTokenizer(tf.Module):
    """Raw strings to BERT ``input_ids``/``attention_mask``, in the graph (build it with
    :func:`from_hf_wordpiece`).

    Calling it on a ``[batch]`` string tensor returns int32 ``input_ids`` and
    ``attention_mask`` of shape ``[batch, longest text in the batch]``. Bytes that are not
    UTF-8 are read as U+FFFD, which BERT's clean-up removes.

    Example:
        >>> texts = ["", "I feel great!"]
        >>> out = from_hf_wordpiece(tokenizer, 64)(tf.constant(texts))
        >>> out["input_ids"].shape[1] == max(len(tokenizer(t)["input_ids"]) for t in texts)
        True
        >>> int(out["attention_mask"].numpy()[0].sum())  # "": [CLS] [SEP]
        2
    """

    def __init__(self, vocab: dict[str, int], char_table: dict[str, np.ndarray],
                 added_tokens: list[str], unk_token: str, prefix: str, max_chars_per_word: int,
                 cls_id: int, sep_id: int, pad_id: int, max_length: int,
                 description: Optional[dict[str, Any]] = None, name: Optional[str] = None):
        super().__init__(name=name)
        if unk_token not in vocab:
            raise UnsupportedTokenizerError(
                f"The unknown token must be in the vocabulary. Received: unk_token={unk_token!r}"
            )
        self.max_length = int(max_length)
        # Kept as JSON: a dict attribute of a tf.Module would become a tracked wrapper.
        self._description = json.dumps(dict(description or {}, max_length=self.max_length,
                                            vocab_size=len(vocab), added_tokens=list(added_tokens)))
        self._vocab = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(vocab), tf.string), tf.constant(list(vocab.values()), tf.int64)),
            default_value=-1)
        pieces = [t[len(prefix):] if prefix and t.startswith(prefix) else t for t in vocab]
        self._widest_piece = max(len(p) for p in pieces)
        self._unk_id = int(vocab[unk_token])
        self._prefix = prefix
        self._max_chars = int(max_chars_per_word)
        self._cls_id, self._sep_id, self.pad_id = int(cls_id), int(sep_id), int(pad_id)
        self._starts = tf.constant(char_table["starts"], tf.int32)
        self._kinds = tf.constant(char_table["kinds"], tf.int32)
        self._bases = tf.constant(char_table["bases"], tf.int32)
        self._rows = tf.constant(char_table["rows"], tf.int32)
        # Leftmost-longest match, as the tokenizers library does: RE2 takes the leftmost
        # match and, at one position, the first alternative, so the longest goes first.
        self._added_pattern = "|".join(
            re2_literal(t) for t in sorted(added_tokens, key=len, reverse=True))
        self._normalized_added: list[tuple[str, str]] = []

    def match_normalized(self, contents: list[str]) -> None:
        """Also find these added tokens in the normalised text (``normalized=True`` ones).

        Each is looked for as the normalisation and pre-tokenisation make it (``<unk>``
        becomes ``" < unk > "``), which is where the normalised text holds it; what is found
        becomes the token.
        """
        forms = []
        for content in sorted(contents, key=len, reverse=True):
            form = self._normalized_text(tf.constant([content]))[0].numpy().decode("utf-8")
            if form.strip():
                forms.append((form, content))
        self._normalized_added = forms
        self._description = json.dumps(dict(json.loads(self._description),
                                            normalized_added_tokens=[c for _, c in forms]))

    @property
    def description(self) -> dict[str, Any]:
        """The settings reproduced: normaliser flags, max_length, vocab size, added tokens."""
        return json.loads(self._description)

    @on_text_batches
    def __call__(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        ids = self.text_ids(text, self.max_length - 2)
        return frame(ids, tf.shape(text, out_type=tf.int64)[0], self.prefix_ids,
                     self.suffix_ids, self.pad_id)

    @property
    def prefix_ids(self) -> list[int]:
        """The ids before a text's own: ``[CLS]``."""
        return [self._cls_id]

    @property
    def suffix_ids(self) -> list[int]:
        """The ids after a text's own: ``[SEP]``."""
        return [self._sep_id]

    def text_ids(self, text: tf.Tensor, limit: int) -> tf.RaggedTensor:
        """[batch] strings -> [batch, tokens] int64 ids without special tokens, the first
        ``limit`` tokens of each text (what ``add_special_tokens=False`` gives, cut there)."""
        # Every word gives at least one token: later words would be cut anyway.
        words = self._words(text)[:, :limit]
        return self._wordpiece(words)[:, :limit]

    # Normalisation and pre-tokenisation ----------------------------------------------------

    def _words(self, text: tf.Tensor) -> tf.RaggedTensor:
        """[batch] strings -> [batch, words] normalised, pre-tokenised words."""
        normalized = self._normalized_text(text)
        for form, content in self._normalized_added:
            replacement = f" {chr(_OPEN)}{content} ".replace("\\", "\\\\")
            normalized = tf.strings.regex_replace(normalized, re2_literal(form), replacement)
        words = tf.strings.split(normalized, sep=" ")
        return tf.ragged.boolean_mask(words, tf.strings.length(words) > 0)

    def _normalized_text(self, text: tf.Tensor) -> tf.Tensor:
        """[batch] strings -> [batch] normalised strings with spaces where words split."""
        if self._added_pattern:
            text = tf.strings.regex_replace(text, f"[\\x{{{_OPEN:X}}}\\x{{{_CLOSE:X}}}]", "")
            text = tf.strings.regex_replace(text, self._added_pattern,
                                            f" {chr(_OPEN)}\\0{chr(_CLOSE)} ")
        chars = tf.strings.unicode_decode(text, "UTF-8", errors="replace",
                                          replacement_char=0xFFFD)
        points = chars.flat_values
        slot = tf.searchsorted(self._starts, points, side="right") - 1
        kind = tf.gather(self._kinds, slot)
        if self._added_pattern:  # added tokens and their opening mark stay as they are
            marks = tf.cast(points == _OPEN, tf.int32) - tf.cast(points == _CLOSE, tf.int32)
            kind = tf.where(tf.math.cumsum(marks) > 0, _IDENTITY, kind)
        row = tf.gather(self._bases, slot) + points - tf.gather(self._starts, slot)
        width = self._rows.shape[1]
        blank = tf.fill(tf.stack([tf.size(points), width]), -1)
        column = tf.range(width)[None, :]
        point_col = points[:, None]
        identity = tf.where(column == 0, point_col, blank)
        space = tf.where(column == 0, 32, blank)
        padded = tf.where(column == 1, point_col, tf.where(column < 3, 32, blank))
        explicit = tf.gather(self._rows, tf.where(kind == _EXPLICIT, row, 0))
        kind_col = kind[:, None]
        out = tf.where(kind_col == _IDENTITY, identity,
                       tf.where(kind_col == _SPACE, space,
                                tf.where(kind_col == _PADDED, padded,
                                         tf.where(kind_col == _EXPLICIT, explicit, blank))))
        keep = out >= 0
        per_char = tf.reduce_sum(tf.cast(keep, tf.int64), axis=1)
        per_text = tf.math.unsorted_segment_sum(per_char, row_ids(chars), chars.nrows())
        normalized = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(out, keep), per_text)
        return tf.strings.unicode_encode(normalized, "UTF-8")

    # WordPiece ----------------------------------------------------------------------------

    def _wordpiece(self, words: tf.RaggedTensor) -> tf.RaggedTensor:
        """[batch, words] strings -> [batch, tokens] int64 ids."""
        flat = words.flat_values
        n_chars = tf.strings.length(flat, unit="UTF8_CHAR")
        whole = self._vocab.lookup(flat)
        too_long = n_chars > self._max_chars
        fast = (whole >= 0) & ~too_long
        slow = tf.where(~fast & ~too_long)[:, 0]
        e_word, e_step, e_id, slow_bad = self._greedy(tf.gather(flat, slow),
                                                      tf.gather(n_chars, slow))
        bad = too_long | tf.scatter_nd(slow[:, None], slow_bad, tf.shape(too_long, tf.int64))
        fast_words = tf.where(fast)[:, 0]
        bad_words = tf.where(bad)[:, 0]
        loop_words = tf.gather(slow, e_word)
        keep_loop = ~tf.gather(bad, loop_words)
        loop_words = tf.boolean_mask(loop_words, keep_loop)
        word = tf.concat([fast_words, loop_words, bad_words], 0)
        step = tf.concat([tf.zeros_like(fast_words), tf.boolean_mask(e_step, keep_loop),
                          tf.zeros_like(bad_words)], 0)
        ids = tf.concat([tf.gather(whole, fast_words), tf.boolean_mask(e_id, keep_loop),
                         tf.fill(tf.shape(bad_words), tf.constant(self._unk_id, tf.int64))], 0)
        order = tf.argsort(word * _STEP_LIMIT + step, stable=True)
        text_of_token = tf.gather(row_ids(words), tf.gather(word, order))
        return tf.RaggedTensor.from_value_rowids(tf.gather(ids, order), text_of_token,
                                                 nrows=words.nrows())

    def _greedy(self, words: tf.Tensor, n_chars: tf.Tensor):
        """Longest-match-first on words that are not whole vocabulary entries.

        Returns (word index, step, id) of every piece found, and which words had no match.
        """
        count = tf.shape(words)[0]
        empty = tf.zeros([0], tf.int64)

        def body(step, start, bad, active, e_word, e_step, e_id):
            w, s, n = (tf.gather(x, active) for x in (words, start, n_chars))
            remaining = n - s
            width = tf.minimum(self._widest_piece, tf.reduce_max(remaining))
            shape = tf.stack([tf.size(active), width])
            lengths = tf.broadcast_to(tf.range(1, width + 1)[None, :], shape)
            pieces = tf.strings.substr(tf.broadcast_to(w[:, None], shape),
                                       tf.broadcast_to(s[:, None], shape), lengths,
                                       unit="UTF8_CHAR")
            prefix = tf.broadcast_to(tf.where(s > 0, self._prefix, "")[:, None], shape)
            ids = self._vocab.lookup(tf.strings.join([prefix, pieces]))
            hit = (ids >= 0) & (lengths <= remaining[:, None])
            found = tf.reduce_any(hit, axis=1)
            best = width - 1 - tf.argmax(tf.reverse(tf.cast(hit, tf.int32), [1]), axis=1,
                                         output_type=tf.int32)
            token = tf.gather(ids, best, batch_dims=1)
            new_start = s + best + 1
            start = tf.tensor_scatter_nd_update(start, active[:, None], new_start)
            bad = tf.tensor_scatter_nd_update(bad, active[:, None], ~found)
            done = tf.boolean_mask(active, found)
            e_word = tf.concat([e_word, tf.cast(done, tf.int64)], 0)
            steps = tf.fill(tf.shape(done, tf.int64), tf.cast(step, tf.int64))
            e_step = tf.concat([e_step, steps], 0)
            e_id = tf.concat([e_id, tf.boolean_mask(token, found)], 0)
            active = tf.boolean_mask(active, found & (new_start < n))
            return step + 1, start, bad, active, e_word, e_step, e_id

        loop_vars = (tf.constant(0), tf.zeros([count], tf.int32), tf.zeros([count], tf.bool),
                     tf.range(count), empty, empty, empty)
        invariants = (tf.TensorShape([]), tf.TensorShape([None]), tf.TensorShape([None]),
                      tf.TensorShape([None]), tf.TensorShape([None]), tf.TensorShape([None]),
                      tf.TensorShape([None]))
        _, _, bad, _, e_word, e_step, e_id = tf.while_loop(
            lambda step, start, bad, active, *_: tf.size(active) > 0, body, loop_vars,
            shape_invariants=invariants)
        return e_word, e_step, e_id, bad


# Building the tables from the Hugging Face tokenizer ---------------------------------------


def _check_supported(tokenizer: Any) -> Any:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UnsupportedTokenizerError(
            "In-graph tokenization needs a Hugging Face *fast* tokenizer (load it with "
            "AutoTokenizer.from_pretrained(..., use_fast=True)). "
            f"Received: {type(tokenizer).__name__}"
        )
    parts = {"model": (backend.model, "WordPiece"),
             "normalizer": (backend.normalizer, "BertNormalizer"),
             "pre_tokenizer": (backend.pre_tokenizer, "BertPreTokenizer")}
    for part, (obj, expected) in parts.items():
        if type(obj).__name__ != expected:
            raise UnsupportedTokenizerError(
                f"In-graph tokenization supports WordPiece tokenizers with BERT's normalizer and "
                f"pre-tokenizer (the {part} must be {expected}), byte-level BPE and "
                f"SentencePiece Unigram ones. "
                f"Received: {part}={type(obj).__name__} "
                f"({type(tokenizer).__name__})"
            )
    expected_ids = [tokenizer.cls_token_id, tokenizer.sep_token_id]
    if None in expected_ids or tokenizer("")["input_ids"] != expected_ids:
        raise UnsupportedTokenizerError(
            "In-graph tokenization expects the template '[CLS] text [SEP]'. "
            f"Received: tokenizer('')['input_ids']={tokenizer('')['input_ids']}"
        )
    return backend


def _added_tokens(tokenizer: Any) -> list[tuple[str, int, bool]]:
    """(content, id, normalized) of the added tokens: the others are matched in the raw text
    before anything else, these in the normalised text."""
    tokens = []
    for token_id, token in sorted(tokenizer.added_tokens_decoder.items()):
        if token.single_word or not token.content or " " in token.content:
            raise UnsupportedTokenizerError(
                "In-graph tokenization supports added tokens without single_word and without "
                f"spaces. Received: added token {token!r}"
            )
        tokens.append((str(token.content), int(token_id), bool(token.normalized)))
    return tokens


# Per-code-point tables by normalizer and pre-tokenizer settings (their reprs list them all).
_TABLES: dict[tuple[str, str], dict[str, np.ndarray]] = {}


def _char_table(normalizer: Any, pre_tokenizer: Any) -> dict[str, np.ndarray]:
    """Ranges of code points and how each is rewritten before the split on spaces."""
    key = (repr(normalizer), repr(pre_tokenizer))
    if key not in _TABLES:
        if normalizer.normalize_str(chr(_OPEN) + chr(_CLOSE)):
            raise UnsupportedTokenizerError(
                "In-graph tokenization needs BERT's text clean-up (clean_text=True). "
                f"Received: normalizer={normalizer!r}"
            )
        _TABLES[key] = _ranges(*_per_code_point(normalizer, pre_tokenizer))
    return _TABLES[key]


def _per_code_point(normalizer: Any, pre_tokenizer: Any):
    """Kind of every code point, and the replacement row of the explicit ones."""
    chars, outputs = _normalize_each(normalizer)
    classes = _split_classes(pre_tokenizer, set("".join(outputs)))
    points = np.fromiter(map(ord, chars), np.int64, len(chars))
    same = np.fromiter(map(str.__eq__, outputs, chars), bool, len(chars))
    kinds = np.full(_MAX_CODE_POINT, _REMOVED, np.int32)
    kinds[points[same]] = np.array([_IDENTITY, _SPACE, _PADDED])[classes[points[same]]]
    rows_of = np.full(_MAX_CODE_POINT, -1, np.int32)
    rows: list[list[int]] = []
    for i in np.flatnonzero(~same):
        char, out, point = chars[i], outputs[i], points[i]
        if not out:
            continue
        if out == f" {char} " and classes[point] == 0:  # CJK ideographs
            kinds[point] = _PADDED
            continue
        mapped = "".join((d, " ", f" {d} ")[classes[ord(d)]] for d in out)
        if mapped == " ":
            kinds[point] = _SPACE
        elif mapped == f" {char} ":
            kinds[point] = _PADDED
        else:
            kinds[point], rows_of[point] = _EXPLICIT, len(rows)
            rows.append([ord(d) for d in mapped])
    return kinds, rows_of, rows


def _normalize_each(normalizer: Any) -> tuple[list[str], list[str]]:
    """What the normalizer makes of each character alone, for characters it keeps.

    Blocks the normalizer removes entirely (unassigned planes, private use) are dropped
    with one call each; the others are probed in one call, characters separated by '#'.
    """
    chars: list[str] = []
    for begin in range(0, _MAX_CODE_POINT, _PROBE_BLOCK):
        points = range(begin, begin + _PROBE_BLOCK)
        if _SURROGATES[0] <= begin < _SURROGATES[1]:
            continue  # _PROBE_BLOCK divides the surrogate range: these blocks are all surrogates
        block = "".join(map(chr, points))
        if normalizer.normalize_str(block):
            chars.extend(block)
    chars.remove(_PROBE_SEPARATOR)
    parts = normalizer.normalize_str(_PROBE_SEPARATOR.join(chars)).split(_PROBE_SEPARATOR)
    if len(parts) != len(chars):  # a character normalised into the separator: go one by one
        parts = [normalizer.normalize_str(c) for c in chars]
    return chars + [_PROBE_SEPARATOR], parts + [normalizer.normalize_str(_PROBE_SEPARATOR)]


def _split_classes(pre_tokenizer: Any, chars: set[str]) -> np.ndarray:
    """Per code point: 0 word character, 1 whitespace, 2 punctuation, as the pre-tokenizer sees it.

    Each character is probed between two 'a's: whitespace disappears from the pieces,
    punctuation becomes a one-character piece, a word character joins its neighbours.
    """
    probe = list(chars - {"a"})
    text = "a" + "a".join(probe) + "a"
    offsets = np.array([span for _, span in pre_tokenizer.pre_tokenize_str(text)],
                       np.int64).reshape(-1, 2)
    depth = np.zeros(len(text) + 1, np.int64)
    np.add.at(depth, offsets[:, 0], 1)
    np.add.at(depth, offsets[:, 1], -1)
    covered = np.cumsum(depth)[1: 2 * len(probe): 2] > 0  # odd positions hold probed chars
    found = np.where(covered, 0, 1).astype(np.int8)
    single = offsets[(offsets[:, 1] - offsets[:, 0] == 1) & (offsets[:, 0] % 2 == 1), 0]
    found[(single - 1) // 2] = 2
    classes = np.zeros(_MAX_CODE_POINT, np.int8)
    classes[np.fromiter(map(ord, probe), np.int64, len(probe))] = found
    return classes


def _ranges(kinds: np.ndarray, rows_of: np.ndarray, rows: list[list[int]]) -> dict[str, np.ndarray]:
    """Run-length encode the per-code-point kinds (explicit rows stay consecutive in a run)."""
    change = np.ones(_MAX_CODE_POINT, bool)
    next_row = (kinds[1:] == _EXPLICIT) & (rows_of[1:] != rows_of[:-1] + 1)
    change[1:] = (kinds[1:] != kinds[:-1]) | next_row
    starts = np.flatnonzero(change).astype(np.int32)
    width = max([3] + [len(r) for r in rows])
    table = np.full((max(len(rows), 1), width), -1, np.int32)
    for i, row in enumerate(rows):
        table[i, : len(row)] = row
    return {"starts": starts, "kinds": kinds[starts], "bases": rows_of[starts], "rows": table}
