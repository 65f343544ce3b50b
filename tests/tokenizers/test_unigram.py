"""The in-graph SentencePiece Unigram tokenizer gives the Hugging Face fast tokenizer's ids.

The tokenizers are trained here with the ``sentencepiece`` package (an NFKC rule, so the
precompiled character map is real) and converted by transformers as XLM-R's is, or trained with
the ``tokenizers`` library (no normalizer, no template), so every case runs offline.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfemotion.tokenizers import STRESS_TEXTS, UnsupportedTokenizerError, from_hf_tokenizer
from tfemotion.tokenizers.unigram import UnigramTokenizer, charsmap_entries

from support import (FUZZ_TEXTS, mismatches, random_texts, trained_fast_tokenizer,
                     xlmr_tokenizer)

MAX_LENGTH = 64
# Words, special tokens, and what the character map and the Viterbi search make hard: keys that
# start a grapheme cluster (①+accent loses its accent), halfwidth kana of exactly 6 bytes,
# fullwidth brackets that normalise into special-token text, runs of spaces.
WORDS = ["happy", "feel", "sad", "<s>", "</s>", "<mask>", " <mask>", "<pad>", "<unk>", "  ",
         "①\u0301", "ｶﾞ", "＜s＞", "x  y", "A\u030a", "\u00a0", "ﬁ", "㎏", "™\u0301",
         "\U0001F469\u200d\u2122\u0301", "\r\n", "\u0600a", "＜mask＞"]


@pytest.fixture(scope="module")
def hf_xlmr(xlmr_hf_tokenizer):
    return xlmr_hf_tokenizer


@pytest.fixture(scope="module")
def in_graph(hf_xlmr):
    """The in-graph tokenizer of ``hf_xlmr`` (building and tracing one takes seconds)."""
    return from_hf_tokenizer(hf_xlmr, MAX_LENGTH)


# make check runs XLM-R's converter; make test prepend_scheme="first" too.
@pytest.fixture(scope="module", params=["always", pytest.param("first",
                                                               marks=pytest.mark.integration)])
def pair(request, hf_xlmr, in_graph, tmp_path_factory):
    """(in-graph, Hugging Face) for XLM-R's converter, and with prepend_scheme="first"."""
    if request.param == "always":
        return in_graph, hf_xlmr
    hf_tokenizer = xlmr_tokenizer(tmp_path_factory.mktemp("spm-first"), prepend_scheme="first")
    return from_hf_tokenizer(hf_tokenizer, MAX_LENGTH), hf_tokenizer


def test_converted_tokenizer_is_what_xlmr_uses(hf_xlmr):
    """The fixture has XLM-R's pipeline: character map, Strip, Replace, Metaspace, <s> </s>."""
    spec = json.loads(hf_xlmr.backend_tokenizer.to_str())
    assert [step["type"] for step in spec["normalizer"]["normalizers"]] == [
        "Precompiled", "Strip", "Replace"]
    assert spec["pre_tokenizer"]["type"] == "Metaspace" and spec["model"]["type"] == "Unigram"
    assert hf_xlmr("")["input_ids"] == [0, 2] and hf_xlmr.pad_token_id == 1


@pytest.mark.integration  # seconds: the stress list's 100,000-character words, a Viterbi step each
def test_unigram_tokenizer_matches_hf_on_stress_texts(pair):
    in_graph, hf_tokenizer = pair
    assert isinstance(in_graph, UnigramTokenizer)
    assert mismatches(in_graph, hf_tokenizer, list(STRESS_TEXTS), MAX_LENGTH, batch=8) == []


def test_unigram_tokenizer_matches_hf_on_random_unicode(pair):
    in_graph, hf_tokenizer = pair
    texts = random_texts(FUZZ_TEXTS, seed=11, words=WORDS)
    assert mismatches(in_graph, hf_tokenizer, texts, MAX_LENGTH) == []


def test_character_map_quirks_are_reproduced(hf_xlmr, in_graph):
    """A cluster under 6 bytes is replaced by its shortest key prefix (①+accent -> 1); a
    6-byte cluster is mapped character by character; ＜s＞ normalises into <s>'s text."""
    normalizer = hf_xlmr.backend_tokenizer.normalizer
    assert normalizer.normalize_str("①\u0301") == "1"
    assert normalizer.normalize_str("ｶﾞ") != normalizer.normalize_str("ガ")
    texts = ["①\u0301", "①", "ｶﾞ", "＜s＞", "x\u0301  y", "ﬁ\u0301", "a\r\nb"]
    assert mismatches(in_graph, hf_xlmr, texts, MAX_LENGTH) == []
    # <mask> is matched after normalisation, so its fullwidth form is <mask> too.
    assert hf_xlmr.added_tokens_decoder[hf_xlmr.mask_token_id].normalized
    assert hf_xlmr("a ＜mask＞")["input_ids"][-2] == hf_xlmr.mask_token_id
    assert mismatches(in_graph, hf_xlmr, ["a ＜mask＞", "＜mask＞b"], MAX_LENGTH) == []


def test_charsmap_entries_reads_the_trie(hf_xlmr):
    spec = json.loads(hf_xlmr.backend_tokenizer.to_str())
    entries = charsmap_entries(spec["normalizer"]["normalizers"][0]["precompiled_charsmap"])
    normalizer = hf_xlmr.backend_tokenizer.normalizer
    assert len(entries) > 1000 and entries["①"] == "1" and entries["ｶ"] == "カ"
    single = [key for key in entries if len(key) == 1 and key.isprintable() and entries[key]]
    for key in single[::50]:  # what the map says is what the normalizer does
        assert normalizer.normalize_str(key) == entries[key].rstrip(" ")


@pytest.mark.parametrize("max_length", [2, *(pytest.param(n, marks=pytest.mark.integration)
                                            for n in (3, 8))])  # make check: the tightest
def test_unigram_tokenizer_truncates_like_hf_at_and_past_the_limit(hf_xlmr, max_length):
    in_graph = from_hf_tokenizer(hf_xlmr, max_length)
    texts = ["", "a", "i feel", "i feel happy today", "<mask> <mask> <mask> <mask> <mask>",
             "x" * 50, "①\u0301 " * 10] + random_texts(200, seed=3, words=WORDS)
    lengths = [len(ids) for ids in hf_xlmr(texts, truncation=True,
                                            max_length=max_length)["input_ids"]]
    assert max(lengths) == max_length and min(lengths) == 2
    assert mismatches(in_graph, hf_xlmr, texts, max_length) == []


def test_unigram_tokenizer_pads_with_the_pad_id_and_masks(hf_xlmr, in_graph):
    out = in_graph(tf.constant(["i", "i feel happy today"]))
    ids, mask = out["input_ids"].numpy(), out["attention_mask"].numpy()
    short = int(mask[0].sum())
    assert (ids[0, short:] == hf_xlmr.pad_token_id).all() and (mask[0, short:] == 0).all()
    assert mask[1].all() and ids.dtype == np.int32


@pytest.mark.integration  # a second Unigram, trained and built here (seconds)
def test_unigram_trained_by_the_tokenizers_library_matches_hf():
    """No normalizer, no special tokens around the text, an unknown token of its own."""

    hf_tokenizer = trained_fast_tokenizer("unigram")
    in_graph = from_hf_tokenizer(hf_tokenizer, 32)
    assert in_graph.description["template"] == [[], []]
    texts = list(STRESS_TEXTS) + random_texts(500, seed=4, words=["happy", "[CLS]", "[UNK]"])
    assert mismatches(in_graph, hf_tokenizer, texts, 32) == []


@pytest.mark.parametrize("change, setting", [
    (lambda spec: spec["model"].update(byte_fallback=True), "model.byte_fallback"),
    (lambda spec: spec.update(normalizer={"type": "Lowercase"}), "normalizer"),
    (lambda spec: spec.update(pre_tokenizer={"type": "Whitespace"}), "pre_tokenizer"),
    (lambda spec: spec["normalizer"]["normalizers"].append(
        {"type": "Replace", "pattern": {"Regex": "^ +"}, "content": ""}),
     "normalizer Replace pattern"),  # ^ is a line anchor in Oniguruma, a text anchor in RE2
    (lambda spec: (spec["normalizer"]["normalizers"][1].update(strip_left=True),
                   spec["pre_tokenizer"].update(prepend_scheme="first")),
     "pre_tokenizer.prepend_scheme"),
])
def test_settings_that_cannot_be_reproduced_are_refused_by_name(hf_xlmr, change, setting):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(hf_xlmr.backend_tokenizer.to_str())
    change(spec)
    changed = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
                                      bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                      unk_token="<unk>")
    with pytest.raises(UnsupportedTokenizerError, match=f"{setting}=.*'encoded' signatures"):
        from_hf_tokenizer(changed, MAX_LENGTH)


@pytest.mark.integration  # a Python process of its own
def test_unigram_tokenizer_saved_and_run_in_a_process_that_imports_only_tensorflow(
        hf_xlmr, in_graph, tmp_path):
    tf.saved_model.save(in_graph, str(tmp_path / "tokenizer"))
    texts = ["i feel happy <mask>", "①\u0301 ＜s＞ café", "", "x" * 300]
    script = (
        "import json, sys, tensorflow as tf\n"
        f"loaded = tf.saved_model.load({str(tmp_path / 'tokenizer')!r})\n"
        f"out = loaded(tf.constant({texts!r}))\n"
        "print(json.dumps([[int(i) for i, m in zip(row, mask) if m] for row, mask in "
        "zip(out['input_ids'].numpy(), out['attention_mask'].numpy())]))\n"
        "assert not any(name.startswith(('tfemotion', 'transformers', 'tokenizers', 'regex'))"
        " for name in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = hf_xlmr(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == expected


def test_edge_characters_normalize_and_tokenize_as_hf_does(hf_xlmr, in_graph):
    """Unassigned, private-use, control and format code points and joining marks next to the
    map's keys: U+05C8 (unassigned in the tokenizers library's Unicode 16, Extend in the regex
    package's 17) once joined ⁉ here and was swallowed with it. Normalization is compared
    itself, since a small vocabulary fuses the unknowns that would show it in the ids."""
    from tfemotion.tokenizers.common import edge_texts

    spec = json.loads(hf_xlmr.backend_tokenizer.to_str())
    entries = charsmap_entries(spec["normalizer"]["normalizers"][0]["precompiled_charsmap"])
    texts = ["зๅ⁉\u05c8\x11", "⁉\u05c8"] + edge_texts(
        3000, seed=5, extra=[key for key in entries if len(key) == 1])
    normalizer = hf_xlmr.backend_tokenizer.normalizer
    ours = [t.decode("utf-8") for t in in_graph._normalize(tf.constant(texts)).numpy()]
    assert [(t, o) for t, o in zip(texts, ours) if o != normalizer.normalize_str(t)] == []
    assert mismatches(in_graph, hf_xlmr, texts, MAX_LENGTH) == []
