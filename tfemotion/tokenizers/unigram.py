"""SentencePiece Unigram tokenization (XLM-R family) in the graph, core TensorFlow ops only.

:class:`UnigramTokenizer` turns raw strings into the ``input_ids``/``attention_mask`` that the
Hugging Face fast tokenizer it was built from (:func:`from_hf_unigram`) gives with
``truncation=True, max_length=L``, padded to the longest text of the batch. It reproduces:

* the added tokens matched in the raw text (``<s>``, ``</s>``...), then, after normalisation,
  those matched in the normalised text (XLM-R's ``<mask>``), leftmost-longest, with their
  ``lstrip``/``rstrip``;
* the ``Precompiled`` normalizer of SentencePiece's character map, as the tokenizers library runs
  it: each extended grapheme cluster (UAX #29) shorter than 6 bytes whose start is a key of the
  map becomes the value of the *shortest* such key; every other character is mapped on its own.
  The map's keys are read out of its double-array trie once, at build time;
* the normalizers that follow it in XLM-R's converter (``Strip``, ``Replace``), and the
  ``Metaspace`` pre-tokenizer (``▁`` for spaces, ``prepend_scheme``, a split before each ``▁``);
* the Unigram model: the Viterbi best segmentation of each word in float64 scores, a piece of
  one character unknown to the vocabulary scoring ``min score - 10`` as ``<unk>``, runs of
  unknown pieces fused into one, ties going to the longer piece as in the tokenizers library;
* the template (``<s> ... </s>``), truncation and padding.

The lookup tables (pieces, scores, the character map, grapheme classes) are built once from the
checkpoint and never grow while a server runs. The Viterbi loop runs once per character of the
longest word of the batch, over the words still that long.

Settings it cannot reproduce (``byte_fallback``, no ``<unk>``, other normalizers or
pre-tokenizers, added tokens matched as single words) raise :class:`UnsupportedTokenizerError`
naming the setting.

Example:
    >>> # xlmr_tokenizer: AutoTokenizer.from_pretrained("xlm-roberta-base"), or any XLM-R's
    >>> in_graph = from_hf_unigram(xlmr_tokenizer, 64)
    >>> ids = in_graph(tf.constant(["Héllo ① café!"]))["input_ids"].numpy()[0].tolist()
    >>> ids == xlmr_tokenizer("Héllo ① café!")["input_ids"]
    True
"""

from __future__ import annotations

import base64
import functools
import json
import re
import struct
from typing import Any, Optional

import numpy as np
import tensorflow as tf

from tfemotion.tokenizers.common import (WHITE_SPACE, UnsupportedTokenizerError, frame,
                                        interleave, last_true_index, positions,
                                        positions_in_runs, re2_literal, refuse_unless,
                                        repeat_each, row_ids,
                                        split_added, string_table,
                                        template_within, white_space_class,
                                        on_text_batches)

# Clusters shorter than this many UTF-8 bytes are looked up whole in the character map.
_GRAPHEME_BYTES = 6
# A character unknown to the vocabulary scores this much below the lowest piece.
_UNK_PENALTY = 10.0
# Grapheme_Cluster_Break classes that decide clusters shorter than 6 bytes (see _grapheme_starts).
_OTHER, _CR, _LF, _CONTROL, _EXTEND, _ZWJ, _SPACING_MARK, _PREPEND = range(8)
_PROPERTIES = {_CR: "GCB=CR", _LF: "GCB=LF", _CONTROL: "GCB=Control", _EXTEND: "GCB=Extend",
               _ZWJ: "GCB=ZWJ", _SPACING_MARK: "GCB=SpacingMark", _PREPEND: "GCB=Prepend"}
_SUPPORTED_NORMALIZERS = ("Precompiled", "Strip", "Replace")


def from_hf_unigram(tokenizer: Any, max_length: int) -> "UnigramTokenizer":
    """Build the in-graph equivalent of a Hugging Face fast SentencePiece Unigram tokenizer.

    Args:
        tokenizer: PreTrainedTokenizerFast with a ``Unigram`` model and a ``Metaspace``
            pre-tokenizer (``XLMRobertaTokenizerFast``...).
        max_length: int. Texts are truncated to this many tokens, special tokens included.

    Returns:
        A :class:`UnigramTokenizer` (a ``tf.Module``, saveable in a SavedModel).

    Raises:
        UnsupportedTokenizerError: a setting the in-graph tokenizer cannot reproduce; the
            message names it.

    Example:
        >>> from_hf_unigram(xlmr_tokenizer, max_length=64).max_length
        64
    """
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model = spec["model"]
    _refuse_unless(not model.get("byte_fallback"), "model.byte_fallback", True, "False")
    _refuse_unless(model.get("unk_id") is not None, "model.unk_id", None, "an <unk> piece")
    normalizers = _normalizer_steps(spec.get("normalizer"))
    metaspace = _metaspace(spec.get("pre_tokenizer"))
    _check_first_scheme(normalizers, metaspace)
    prefix, suffix = template_within(tokenizer, max_length)
    raw_added, normalized_added = _added_tokens(tokenizer)
    return UnigramTokenizer(
        pieces=[(str(piece), float(score)) for piece, score in model["vocab"]],
        unk_id=int(model["unk_id"]), normalizers=normalizers, metaspace=metaspace,
        raw_added=raw_added, normalized_added=normalized_added,
        prefix_ids=prefix, suffix_ids=suffix,
        pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
        max_length=max_length)


def _refuse_unless(ok: bool, setting: str, value: Any, supported: str) -> None:
    refuse_unless(ok, "SentencePiece Unigram", setting, value, supported)


def _normalizer_steps(spec: Optional[dict]) -> list[dict]:
    """The normalizer as a list of supported steps (a ``Sequence`` flattened)."""
    if spec is None:
        return []
    steps = spec["normalizers"] if spec["type"] == "Sequence" else [spec]
    for step in steps:
        _refuse_unless(step["type"] in _SUPPORTED_NORMALIZERS, "normalizer", step["type"],
                       ", ".join(_SUPPORTED_NORMALIZERS))
        if step["type"] == "Replace":
            pattern = step["pattern"].get("Regex")
            # Oniguruma's \s, \w, \d, \b and [[:space:]] are Unicode-aware, RE2's ASCII; its ^
            # and $ match at line ends, RE2's at the ends of the text: refuse them.
            _refuse_unless(pattern is None or not re.search(
                r"\(\?|\\[1-9pPbBsSwWdDhH]|\[\[:|(?<!\\)[\^$]", pattern),
                "normalizer Replace pattern", pattern,
                "literal strings and regular expressions without look-around, back-references, "
                "anchors or character classes")
    return steps


def _check_first_scheme(normalizers: list[dict], metaspace: dict) -> None:
    """prepend_scheme="first" prepends only where the text's first character survived
    normalisation; stripping the start of the text moves it, which is not reproduced."""
    strips_start = any(step["type"] == "Strip" and step.get("strip_left") for step in normalizers)
    _refuse_unless(metaspace["prepend_scheme"] != "first" or not strips_start,
                   "pre_tokenizer.prepend_scheme", "first",
                   "always or never with a normalizer that strips the start of the text")


def _metaspace(spec: Optional[dict]) -> dict:
    """The Metaspace pre-tokenizer's settings: replacement, prepend scheme, split."""
    _refuse_unless(spec is not None and spec.get("type") == "Metaspace", "pre_tokenizer",
                   (spec or {}).get("type"), "Metaspace")
    scheme = spec.get("prepend_scheme")
    if scheme is None:  # older tokenizer files
        scheme = "always" if spec.get("add_prefix_space", True) else "never"
    _refuse_unless(scheme in ("always", "first", "never"), "pre_tokenizer.prepend_scheme", scheme,
                   "always, first, never")
    return {"replacement": spec["replacement"], "prepend_scheme": scheme,
            "split": bool(spec.get("split", True))}


def _added_tokens(tokenizer: Any) -> tuple[list, list]:
    """(content, id, lstrip, rstrip) of the added tokens matched in the raw text, and of those
    matched in the normalised text (their content normalised)."""
    normalizer = tokenizer.backend_tokenizer.normalizer
    raw, normalized = [], []
    for token_id, token in sorted(tokenizer.added_tokens_decoder.items()):
        if token.single_word or not token.content or any(ord(c) in WHITE_SPACE
                                                         for c in token.content):
            raise UnsupportedTokenizerError(
                "In-graph SentencePiece Unigram supports added tokens without single_word and "
                f"without whitespace in them. Received: added token {token!r}")
        content = str(token.content)
        if token.normalized and normalizer is not None:
            content = normalizer.normalize_str(content)
        if not content:
            continue  # a token that normalises to nothing is never matched
        entry = (content, int(token_id), bool(token.lstrip), bool(token.rstrip))
        (normalized if token.normalized else raw).append(entry)
    return raw, normalized


# The character map --------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def charsmap_entries(precompiled_charsmap: str) -> dict[str, str]:
    """Every key of a SentencePiece precompiled character map and the text it maps to (read
    once per process and map: the dictionary is shared, read-only).

    The map is ``[trie size: u32][double-array trie: u32 units][normalised strings, \\0-ended]``;
    the keys are read by walking the trie (Darts-clone's unit layout).

    Example:
        >>> import json
        >>> spec = json.loads(xlmr_tokenizer.backend_tokenizer.to_str())["normalizer"]
        >>> charsmap = next(step for step in spec.get("normalizers", [spec])
        ...                 if step["type"] == "Precompiled")["precompiled_charsmap"]
        >>> charsmap_entries(charsmap)["①"]  # SentencePiece's nmt_nfkc map
        '1'
    """
    blob = base64.b64decode(precompiled_charsmap)
    (trie_size,) = struct.unpack_from("<I", blob, 0)
    units = np.frombuffer(blob, dtype="<u4", count=trie_size // 4, offset=4).astype(np.int64)
    normalized = blob[4 + trie_size:]
    # Where each normalised string ends (its \0, or the end of the blob).
    ends = np.append(np.flatnonzero(np.frombuffer(normalized, np.uint8) == 0), len(normalized))

    def offset(unit):
        return (unit >> 10) << ((unit & (1 << 9)) >> 6)

    def children(nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(parent row, label, unit) of every child of ``nodes``: the units at node ^ label
        whose label byte is that label."""
        child = nodes[:, None] ^ labels[None, :]
        inside = child < len(units)
        unit = np.where(inside, units[np.minimum(child, len(units) - 1)], -1)
        rows, columns = np.nonzero(inside & ((unit & ((1 << 31) | 0xFF)) == labels[None, :]))
        return rows, columns, unit[rows, columns]

    entries: dict[str, str] = {}
    labels = np.arange(1, 256, dtype=np.int64)
    nodes, keys = np.array([offset(units[0])], np.int64), [b""]  # one trie level at a time
    while nodes.size:
        # In blocks of nodes: a [nodes, 255] array per level would take hundreds of megabytes.
        found = [children(nodes[i: i + 4096]) for i in range(0, len(nodes), 4096)]
        rows = np.concatenate([r + i * 4096 for i, (r, _, _) in enumerate(found)])
        labels_found = np.concatenate([c for _, c, _ in found]) + 1
        unit = np.concatenate([u for _, _, u in found])
        nodes = (nodes[rows] ^ labels_found) ^ offset(unit)
        keys = [keys[row] + bytes((label,))
                for row, label in zip(rows.tolist(), labels_found.tolist())]
        leaf = np.flatnonzero((unit >> 8) & 1)
        starts = units[nodes[leaf]] & ((1 << 31) - 1)
        stops = ends[np.searchsorted(ends, starts)]
        for at, begin, stop in zip(leaf.tolist(), starts.tolist(), stops.tolist()):
            try:
                key = keys[at].decode("utf-8")
            except UnicodeDecodeError:  # not whole UTF-8 text: it can never match a string
                continue
            entries[key] = normalized[begin:stop].decode("utf-8")
    return entries


@functools.lru_cache(maxsize=1)
def grapheme_classes() -> dict[str, np.ndarray]:
    """Ranges of code points and their Grapheme_Cluster_Break class, plus Extended_Pictographic.

    Read from the ``regex`` package's Unicode tables, once per process (read-only arrays).

    Example:
        >>> classes = grapheme_classes()
        >>> int(classes["kinds"][np.searchsorted(classes["starts"], 0x301, "right") - 1]) == _EXTEND
        True
    """
    import regex

    kind = np.zeros(0x110000, np.int32)
    pictographic = np.zeros(0x110000, np.int32)
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000)
    code_points = np.array([c for c in range(0x110000) if not 0xD800 <= c < 0xE000], np.int64)

    def mark(pattern: str, array: np.ndarray, value: int) -> None:
        for match in regex.finditer(pattern, text):
            array[code_points[match.start()]: code_points[match.end() - 1] + 1] = value

    for value, name in _PROPERTIES.items():
        mark(r"\p{%s}+" % name, kind, value)
    mark(r"\p{Extended_Pictographic}+", pictographic, 1)
    return _ranges(kind, pictographic)


def _ranges(kind: np.ndarray, pictographic: np.ndarray) -> dict[str, np.ndarray]:
    """Per-code-point classes as ranges: where each run of one class starts (read-only)."""
    starts = np.flatnonzero(np.diff(kind * 2 + pictographic, prepend=-1))
    classes = {"starts": starts.astype(np.int32), "kinds": kind[starts],
               "pictographic": pictographic[starts]}
    for array in classes.values():
        array.flags.writeable = False
    return classes


def calibrated_classes(classes: dict[str, np.ndarray], precompiled_charsmap: str,
                       ) -> dict[str, np.ndarray]:
    """``classes`` with the joining characters that the tokenizers library does not join made
    ``Other``, probed through its own ``Precompiled`` normalizer.

    The ``regex`` package may follow a newer Unicode than the tokenizers library's grapheme
    segmentation (regex 2026.11 has Unicode 17, tokenizers 0.22's unicode-segmentation 1.12 has
    16): a code point assigned since, like U+05C8 (``Extend`` in regex, unassigned and so
    ``Other`` in tokenizers), would join the cluster before it here and not there, and be
    swallowed with it when the map replaces the cluster. A joining character ``c`` (``Extend``,
    ``ZWJ``, ``SpacingMark``) is probed after a one-character key ``k`` whose value differs from
    it: the library joined ``k c`` when it gives ``k``'s value alone. Without the tokenizers
    library, or without such a key, ``classes`` is returned as it is.

    Example:
        >>> charsmap = next(step for step in json.loads(xlmr_tokenizer.backend_tokenizer.to_str(
        ...     ))["normalizer"].get("normalizers", []) if step["type"] == "Precompiled")[
        ...     "precompiled_charsmap"]
        >>> fixed = calibrated_classes(grapheme_classes(), charsmap)
        >>> [int(fixed["kinds"][np.searchsorted(fixed["starts"], c, "right") - 1]) == _EXTEND
        ...  for c in (0x301, 0x5C8)]  # a combining accent; U+05C8, new in Unicode 17
        [True, False]
    """
    try:
        from tokenizers.normalizers import Precompiled
    except ImportError:
        return classes
    entries = charsmap_entries(precompiled_charsmap)
    keys = sorted((key for key, value in entries.items()
                   if len(key) == 1 and value not in ("", key) and key.isprintable()),
                  key=lambda key: len(key.encode("utf-8")))
    if not keys:
        return classes
    key = keys[0]
    normalize = Precompiled(base64.b64decode(precompiled_charsmap)).normalize_str
    ends = np.append(classes["starts"][1:], 0x110000)
    kind = np.repeat(classes["kinds"], ends - classes["starts"])
    pictographic = np.repeat(classes["pictographic"], ends - classes["starts"])
    joining = np.flatnonzero((kind == _EXTEND) | (kind == _ZWJ) | (kind == _SPACING_MARK))
    room = _GRAPHEME_BYTES - 1 - len(key.encode("utf-8"))
    for point in joining:
        character = chr(int(point))
        if len(character.encode("utf-8")) > room or 0xD800 <= point < 0xE000:
            continue  # a longer cluster is mapped character by character: nothing to see
        alone = entries[key] + normalize(character)
        if alone != entries[key] and normalize(key + character) == alone:
            kind[point] = _OTHER
    return _ranges(kind, pictographic)


# The tokenizer ------------------------------------------------------------------------------


class UnigramTokenizer(tf.Module):
    """Raw strings to SentencePiece Unigram ``input_ids``/``attention_mask``, in the graph.

    Build it with :func:`from_hf_unigram`. Calling it on a ``[batch]`` string tensor returns int32
    ``input_ids`` and ``attention_mask`` of shape ``[batch, longest text in the batch]``.

    Example:
        >>> texts = ["", "I feel great!"]
        >>> out = from_hf_unigram(xlmr_tokenizer, 64)(tf.constant(texts))
        >>> out["input_ids"].shape[1] == max(len(xlmr_tokenizer(t)["input_ids"]) for t in texts)
        True
        >>> int(out["attention_mask"].numpy()[0].sum())  # "": <s></s>
        2
    """

    def __init__(self, pieces: list[tuple[str, float]], unk_id: int, normalizers: list[dict],
                 metaspace: dict, raw_added: list, normalized_added: list, prefix_ids: list[int],
                 suffix_ids: list[int], pad_id: int, max_length: int,
                 name: Optional[str] = None):
        super().__init__(name=name)
        self.max_length = int(max_length)
        self._prefix_ids, self._suffix_ids = list(prefix_ids), list(suffix_ids)
        self._limit = self.max_length - len(prefix_ids) - len(suffix_ids)
        self.pad_id, self._unk_id = int(pad_id), int(unk_id)
        self._description = json.dumps({
            "family": "SentencePiece Unigram", "max_length": self.max_length,
            "vocab_size": len(pieces), "normalizers": [step["type"] for step in normalizers],
            "pre_tokenizer": metaspace, "template": [prefix_ids, suffix_ids],
            "added_tokens": [t[0] for t in raw_added + normalized_added]})
        ids = {piece: index for index, (piece, _) in enumerate(pieces)}  # the last one wins
        self._piece_ids = string_table(list(ids), list(ids.values()), -1)
        self._scores = tf.constant([score for _, score in pieces], tf.float64)
        self._unk_score = min(score for _, score in pieces) - _UNK_PENALTY
        self._max_piece = max(len(piece) for piece in ids)
        self._replacement = metaspace["replacement"]
        self._prepend, self._split = metaspace["prepend_scheme"], metaspace["split"]
        self._raw_added, self._normalized_added = raw_added, normalized_added
        added = raw_added + normalized_added
        self._added_table = string_table([t[0] for t in added], [t[1] for t in added], -1) \
            if added else None
        self._steps = []
        classes = grapheme_classes()
        for step in normalizers:
            if step["type"] == "Precompiled":
                self._steps.append(("charsmap", self._charsmap_tables(step)))
                classes = calibrated_classes(classes, step["precompiled_charsmap"])
            else:
                self._steps.append((step["type"], step))
        self._class_starts = tf.constant(classes["starts"], tf.int32)
        self._class_kinds = tf.constant(classes["kinds"], tf.int32)
        self._class_pictographic = tf.constant(classes["pictographic"], tf.int32)

    def _charsmap_tables(self, step: dict) -> dict:
        entries = charsmap_entries(step["precompiled_charsmap"])
        keys = sorted(entries)
        return {"index": string_table(keys or ["\0\0"], list(range(len(keys))) or [0], -1),
                "values": tf.constant([entries[key] for key in keys] or [""], tf.string),
                "longest": max((len(key) for key in keys), default=1)}

    @property
    def description(self) -> dict[str, Any]:
        """The settings reproduced: family, template, max_length, normalizers, pre-tokenizer."""
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
        batch = tf.shape(text, out_type=tf.int64)[0]
        segments, text_of_segment, is_added = split_added(text, self._raw_added)
        plain = tf.boolean_mask(segments, ~is_added)
        # Only a segment that starts its text is "first" for prepend_scheme="first".
        starts_text = tf.boolean_mask(positions_in_runs(text_of_segment) == 0, ~is_added)
        parts, segment_of_part, part_is_added = split_added(self._normalize(plain),
                                                            self._normalized_added)
        first = tf.gather(starts_text, segment_of_part) & (positions_in_runs(segment_of_part) == 0)
        plain_parts = ~part_is_added
        # Each word gives at least one token: words past the limit would be cut anyway.
        words = self._words(tf.boolean_mask(parts, plain_parts),
                            tf.boolean_mask(first, plain_parts))[:, : limit]
        ids = self._viterbi(words.flat_values)
        ids_per_part = tf.RaggedTensor.from_row_lengths(
            ids.flat_values, tf.math.unsorted_segment_sum(ids.row_lengths(), row_ids(words),
                                                          words.nrows()))
        ids_per_segment = interleave(ids_per_part, self._added_ids(parts, part_is_added),
                                     part_is_added, segment_of_part,
                                     tf.size(plain, out_type=tf.int64))
        ids_per_text = interleave(ids_per_segment, self._added_ids(segments, is_added), is_added,
                                  text_of_segment, batch)
        return ids_per_text[:, :limit]

    def _added_ids(self, segments: tf.Tensor, is_added: tf.Tensor) -> tf.Tensor:
        if self._added_table is None:
            return tf.zeros([0], tf.int64)
        return self._added_table.lookup(tf.boolean_mask(segments, is_added))

    # Normalization --------------------------------------------------------------------------

    def _normalize(self, segments: tf.Tensor) -> tf.Tensor:
        for kind, step in self._steps:
            if kind == "charsmap":
                segments = self._apply_charsmap(segments, step)
            elif kind == "Strip":
                white = white_space_class()
                ends = ([f"^{white}+"] if step.get("strip_left") else []) + \
                       ([f"{white}+$"] if step.get("strip_right") else [])
                if ends:
                    segments = tf.strings.regex_replace(segments, "|".join(ends), "")
            else:  # Replace
                pattern = step["pattern"].get("Regex") or re2_literal(step["pattern"]["String"])
                segments = tf.strings.regex_replace(segments, pattern,
                                                    step["content"].replace("\\", "\\\\"))
        return segments

    def _apply_charsmap(self, segments: tf.Tensor, tables: dict) -> tf.Tensor:
        """Map each short grapheme cluster by its shortest key prefix, other characters alone."""
        chars = tf.strings.unicode_split(segments, "UTF-8")
        flat, rows = chars.flat_values, row_ids(chars)
        count = tf.size(flat, out_type=tf.int64)
        points = tf.strings.unicode_decode(flat, "UTF-8").flat_values
        cluster_start = self._grapheme_starts(points, rows)
        cluster = tf.cumsum(tf.cast(cluster_start, tf.int64)) - 1
        n_clusters = tf.reduce_sum(tf.cast(cluster_start, tf.int64))
        cluster_bytes = tf.math.unsorted_segment_sum(tf.cast(tf.strings.length(flat), tf.int64),
                                                     cluster, n_clusters)
        cluster_chars = tf.math.unsorted_segment_sum(tf.ones_like(cluster), cluster, n_clusters)
        first_char = tf.boolean_mask(tf.range(count), cluster_start)
        # The shortest key that starts a short cluster: try 1, 2... characters.
        found = tf.fill([n_clusters], tf.constant(-1, tf.int64))
        prefix = tf.fill([n_clusters], "")
        for length in range(1, min(tables["longest"], _GRAPHEME_BYTES - 1) + 1):
            index = tf.minimum(first_char + length - 1, tf.maximum(count - 1, 0))
            prefix = tf.strings.join([prefix, tf.gather(flat, index)])
            usable = (cluster_bytes < _GRAPHEME_BYTES) & (cluster_chars >= length)
            hit = tables["index"].lookup(prefix)
            found = tf.where((found < 0) & usable & (hit >= 0), hit, found)
        cluster_text = tf.gather(tables["values"], tf.maximum(found, 0))
        single = tables["index"].lookup(flat)
        alone = tf.where(single >= 0, tf.gather(tables["values"], tf.maximum(single, 0)), flat)
        whole = tf.gather(found >= 0, cluster)
        out = tf.where(whole, tf.where(cluster_start, tf.gather(cluster_text, cluster), ""), alone)
        return tf.strings.unsorted_segment_join(out, rows, chars.nrows())

    def _grapheme_starts(self, points: tf.Tensor, rows: tf.Tensor) -> tf.Tensor:
        """Where extended grapheme clusters start (UAX #29), per character of the segments.

        Only clusters shorter than 6 bytes are looked up whole. The rules that only ever join
        characters into longer clusters (Hangul syllables, regional-indicator pairs, Indic
        conjuncts) are left out: a character they would join stays a cluster of its own, which
        is mapped as that character alone, as in a long cluster.
        """
        at = tf.searchsorted(self._class_starts, points, side="right") - 1
        kind = tf.gather(self._class_kinds, at)
        pictographic = tf.gather(self._class_pictographic, at) > 0
        index = tf.range(tf.size(points, out_type=tf.int64))

        def before(values, by, fill):
            """values[i - by] within the same segment, else ``fill``."""
            earlier = tf.maximum(index - by, 0)
            inside = (index >= by) & (tf.gather(rows, earlier) == rows)
            return tf.where(inside, tf.gather(values, earlier), fill)

        first = before(tf.ones_like(rows), 1, 0) == 0
        previous = before(kind, 1, -1)
        controls = tf.constant([_CR, _LF, _CONTROL])
        is_control = tf.reduce_any(kind[:, None] == controls[None, :], 1)
        after_control = tf.reduce_any(previous[:, None] == controls[None, :], 1)
        extends = (kind == _EXTEND) | (kind == _ZWJ) | (kind == _SPACING_MARK) | (
            previous == _PREPEND)
        # GB11: Extended_Pictographic Extend* ZWJ x Extended_Pictographic.
        base = last_true_index(kind != _EXTEND)  # the last non-Extend character so far
        base_before_zwj = before(base, 2, -1)
        safe = tf.maximum(base_before_zwj, 0)
        emoji = (pictographic & (previous == _ZWJ) & (base_before_zwj >= 0) &
                 (tf.gather(rows, safe) == rows) & tf.gather(pictographic, safe))
        crlf = (previous == _CR) & (kind == _LF)
        joined = ~first & (crlf | (~after_control & ~is_control & (extends | emoji)))
        return ~joined

    # Pre-tokenization -----------------------------------------------------------------------

    def _words(self, parts: tf.Tensor, first: tf.Tensor) -> tf.RaggedTensor:
        """[parts] normalised text -> [parts, words]: Metaspace's replace, prepend and split."""
        mark = self._replacement
        parts = tf.strings.regex_replace(parts, " ", mark)
        if self._prepend != "never":
            starts_with_mark = tf.strings.substr(parts, 0, len(mark.encode())) == mark
            prepend = (parts != "") & ~starts_with_mark
            if self._prepend == "first":
                prepend &= first
            parts = tf.where(prepend, tf.strings.join([mark, parts]), parts)
        if not self._split:
            return tf.RaggedTensor.from_value_rowids(
                tf.boolean_mask(parts, parts != ""),
                tf.boolean_mask(tf.range(tf.size(parts, out_type=tf.int64)), parts != ""),
                nrows=tf.size(parts, out_type=tf.int64))
        cut = b"\xff"  # never in UTF-8: a word starts at each replacement
        words = tf.strings.split(tf.strings.regex_replace(parts, re2_literal(mark),
                                                          cut + mark.encode()), sep=cut)
        keep = words.flat_values != ""
        return tf.RaggedTensor.from_value_rowids(tf.boolean_mask(words.flat_values, keep),
                                                 tf.boolean_mask(row_ids(words), keep),
                                                 nrows=words.nrows())

    # Unigram --------------------------------------------------------------------------------

    def _viterbi(self, words: tf.Tensor) -> tf.RaggedTensor:
        """[words] -> [words, ids]: each word's best segmentation into pieces."""
        chars = tf.strings.unicode_split(words, "UTF-8")
        piece_id, piece_score = self._candidates(chars)
        position = positions(chars)
        ending = _scores_by_end(piece_score, position)
        best = _best_scores(ending, chars.row_lengths(), chars.row_starts())
        length, token = _choices(best, ending, piece_id, position)
        word, end, length, token = _backtrack(length, token, position, chars)
        return self._fuse_unknown(word, end - length, end, token, chars)

    def _candidates(self, chars: tf.RaggedTensor) -> tuple[tf.Tensor, tf.Tensor]:
        """[chars, width]: the id and score of the piece of 1..width characters starting at each
        character (-1 and -inf where none); one character with no piece is <unk>."""
        flat = chars.flat_values
        count = tf.size(flat, out_type=tf.int64)
        lengths = chars.row_lengths()
        width = tf.minimum(tf.reduce_max(tf.concat([lengths, [1]], 0)), self._max_piece)
        remaining = repeat_each(lengths, lengths) - positions(chars)
        last = tf.maximum(count - 1, 0)

        def add_character(k, text, found):
            text = tf.strings.join([text, tf.gather(flat, tf.minimum(tf.range(count) + k, last))])
            ids = tf.where(remaining > k, self._piece_ids.lookup(text), -1)
            return k + 1, text, found.write(tf.cast(k, tf.int32), ids)

        found = tf.TensorArray(tf.int64, size=tf.cast(width, tf.int32),
                               element_shape=tf.TensorShape([None]))
        _, _, found = tf.while_loop(lambda k, *_: k < width, add_character,
                                    (tf.constant(0, tf.int64), tf.fill([count], ""), found))
        piece_id = tf.transpose(found.stack())
        piece_score = tf.where(piece_id >= 0, tf.gather(self._scores, tf.maximum(piece_id, 0)),
                               tf.constant(-np.inf, tf.float64))
        unknown = piece_id[:, :1] < 0
        piece_id = tf.concat([tf.where(unknown, tf.constant(self._unk_id, tf.int64),
                                       piece_id[:, :1]), piece_id[:, 1:]], 1)
        piece_score = tf.concat([tf.where(unknown, tf.constant(self._unk_score, tf.float64),
                                          piece_score[:, :1]), piece_score[:, 1:]], 1)
        return piece_id, piece_score

    def _fuse_unknown(self, word, begin, end, token, chars: tf.RaggedTensor) -> tf.RaggedTensor:
        """Runs of <unk> in a word become one token: the id of their text, or <unk>."""
        unknown = token == self._unk_id
        same_word = tf.concat([[False], word[1:] == word[:-1]], 0)
        continues = unknown & tf.concat([[False], unknown[:-1]], 0) & same_word
        group = tf.cumsum(tf.cast(~continues, tf.int64)) - 1
        n_groups = tf.reduce_sum(tf.cast(~continues, tf.int64))
        group_word = tf.boolean_mask(word, ~continues)
        group_token = tf.boolean_mask(token, ~continues)
        group_begin = tf.boolean_mask(begin, ~continues)
        group_end = tf.math.unsorted_segment_max(end, group, n_groups)
        # Only runs of two or more are looked up again by their text.
        fused = (group_token == self._unk_id) & (group_end - group_begin > 1)
        span = tf.where(fused, group_end - group_begin, 0)
        spans = tf.RaggedTensor.from_row_lengths(tf.zeros([tf.reduce_sum(span)], tf.int64), span)
        first = tf.gather(chars.row_starts(), group_word) + group_begin
        # Joined by segment: a ragged reduce_join would pad every run to the longest one.
        text = tf.strings.unsorted_segment_join(
            tf.gather(chars.flat_values, repeat_each(first, span) + positions(spans)),
            row_ids(spans), n_groups)
        again = self._piece_ids.lookup(text)
        ids = tf.where(fused & (again >= 0), again, group_token)
        return tf.RaggedTensor.from_value_rowids(ids, group_word, nrows=chars.nrows())


def _scores_by_end(piece_score: tf.Tensor, position: tf.Tensor) -> tf.Tensor:
    """[chars, width]: the score of the piece of k + 1 characters that ends at each character
    (-inf where it would start before its word), from the scores by start character."""
    count, width = tf.shape(piece_score, out_type=tf.int64)[0], tf.shape(piece_score,
                                                                          out_type=tf.int64)[1]
    k = tf.range(width)
    start = tf.range(count)[:, None] - k[None, :]
    inside = position[:, None] - k[None, :] >= 0
    flat = tf.reshape(piece_score, [-1])
    return tf.where(inside, tf.gather(flat, tf.maximum(start, 0) * width + k[None, :]),
                    tf.constant(-np.inf, tf.float64))


def _best_scores(ending: tf.Tensor, lengths: tf.Tensor, row_starts: tf.Tensor) -> tf.Tensor:
    """[chars]: the best score of each word's prefix that ends at each character: Viterbi over
    every word at once, one end position per step, over the words still that long.

    The only sequential part (one step per character of the longest word): each step adds the
    scores of the pieces ending there to the best scores before them and keeps the maximum,
    in the order of additions of the tokenizers library, so that ties stay ties.
    """
    width = tf.shape(ending, out_type=tf.int64)[1]
    order = tf.cast(tf.argsort(-lengths, stable=True), tf.int64)
    sorted_starts = tf.gather(row_starts, order)
    longest = tf.reduce_max(tf.concat([lengths, [0]], 0))
    per_length = tf.math.bincount(lengths, minlength=longest + 1, dtype=tf.int64)
    active = tf.cumsum(per_length, reverse=True)[1:]  # words at least t long, t = 1..longest
    # The best scores of the last ``width`` prefixes of each word, latest first: at the start
    # only the empty prefix (0).
    first_window = tf.tile(tf.concat([tf.zeros([1, 1], tf.float64),
                                      tf.fill([1, width - 1], tf.constant(-np.inf, tf.float64))],
                                     1), tf.stack([tf.size(lengths, out_type=tf.int64), 1]))
    before_start = sorted_starts - 1

    def step(t, window, bests):
        n = active[t - 1]
        window = window[:n]
        best = tf.reduce_max(window + tf.gather(ending, before_start[:n] + t), 1)
        window = tf.concat([best[:, None], window[:, :-1]], 1)
        return t + 1, window, bests.write(tf.cast(t - 1, tf.int32), best)

    bests = tf.TensorArray(tf.float64, size=tf.cast(longest, tf.int32), infer_shape=False,
                           element_shape=tf.TensorShape([None]))
    _, _, bests = tf.while_loop(
        lambda t, *_: t <= longest, step, (tf.constant(1, tf.int64), first_window, bests),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, None]), tf.TensorShape(None)))
    in_step_order = tf.cond(longest > 0, bests.concat, lambda: tf.zeros([0], tf.float64))
    # Step t holds the words at least t long, longest first: its entry j is character t - 1 of
    # the j-th longest word.
    t = repeat_each(tf.range(1, longest + 1), active)
    j = tf.range(tf.size(t, out_type=tf.int64)) - tf.gather(tf.cumsum(active, exclusive=True),
                                                              t - 1)
    char = tf.gather(sorted_starts, j) + t - 1
    return tf.scatter_nd(char[:, None], in_step_order, tf.shape(ending, out_type=tf.int64)[:1])


def _choices(best: tf.Tensor, ending: tf.Tensor, piece_id: tf.Tensor,
             position: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """[chars]: the length and id of the piece that ends each best prefix. Of equal scores the
    longer piece wins, as in the tokenizers library (it keeps the first best of the starts it
    visits in order)."""
    width = tf.shape(ending, out_type=tf.int64)[1]
    k = tf.range(1, width + 1)
    before = position[:, None] - k[None, :]  # the prefix a piece of k characters continues
    char = tf.range(tf.size(best, out_type=tf.int64))[:, None] - k[None, :]
    previous = tf.where(before >= 0, tf.gather(best, tf.maximum(char, 0)),
                        tf.where(before == -1, tf.constant(0.0, tf.float64),
                                 tf.constant(-np.inf, tf.float64)))
    length = tf.reduce_max(tf.where(previous + ending == best[:, None], k[None, :], 0), 1)
    start = tf.range(tf.size(best, out_type=tf.int64)) - length + 1
    token = tf.gather(tf.reshape(piece_id, [-1]), start * width + length - 1)
    return length, token


def _backtrack(length: tf.Tensor, token: tf.Tensor, position: tf.Tensor,
               chars: tf.RaggedTensor):
    """Each word's pieces, walked back from its last character: (word, end, length, id), in
    word and text order.

    By pointer doubling: after round r every character knows where 2**r pieces back ends, and
    the walk has marked each word's last 2**r pieces; rounds grow with the log of the longest
    word, not with its length.
    """
    count = tf.size(length, out_type=tf.int64)
    index = tf.range(count)
    # The character that ends the piece before, or ``count`` (a sentinel) at a word's start.
    back = tf.concat([tf.where(position - length >= 0, index - length, count), [count]], 0)
    last = tf.gather(chars.row_starts(), tf.where(chars.row_lengths() > 0)[:, 0]) + tf.gather(
        chars.row_lengths(), tf.where(chars.row_lengths() > 0)[:, 0]) - 1
    marked = tf.scatter_nd(last[:, None], tf.ones_like(last, tf.bool), [count + 1])

    def double(marked, back):
        reached = tf.boolean_mask(back, marked)
        marked = marked | tf.scatter_nd(reached[:, None], tf.ones_like(reached, tf.bool),
                                        [count + 1])
        return marked, tf.gather(back, back)

    rounds = tf.cast(tf.math.ceil(tf.math.log(tf.cast(count + 2, tf.float64)) / np.log(2.0)),
                     tf.int64)
    marked, _ = tf.while_loop(lambda r, *_: r < rounds,
                              lambda r, m, b: (r + 1, *double(m, b)),
                              (tf.constant(0, tf.int64), marked, back))[1:]
    kept = tf.where(marked[:count])[:, 0]
    word = tf.gather(row_ids(chars), kept)
    return (word, tf.gather(position, kept) + 1, tf.gather(length, kept),
            tf.gather(token, kept))
