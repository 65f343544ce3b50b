"""The in-graph byte-level BPE tokenizer gives the Hugging Face fast tokenizer's ids, text for text.

The tokenizers are trained here with the ``tokenizers`` library (RoBERTa's post-processor and
special tokens; GPT-2's bare template), so every case runs offline.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfemotion.tokenizers import STRESS_TEXTS, UnsupportedTokenizerError, from_hf_tokenizer
from tfemotion.tokenizers.byte_level_bpe import ByteLevelBPETokenizer, bytes_to_symbols

from support import (FUZZ_TEXTS, mismatches, random_texts, roberta_tokenizer,
                     trained_fast_tokenizer)

MAX_LENGTH = 64
WORDS = ["happy", "feel", "don't", "you're", "I'M", "it's", "<s>", "</s>", "<mask>", " <mask>",
         "<pad>", "'s", "''ll", "  ", "2024"]


# make check runs RoBERTa's settings; make test add_prefix_space too.
@pytest.fixture(scope="module", params=[pytest.param(False, id="roberta"),
                                        pytest.param(True, id="add-prefix-space",
                                                     marks=pytest.mark.integration)])
def pair(request):
    hf_tokenizer = roberta_tokenizer(add_prefix_space=request.param)
    return from_hf_tokenizer(hf_tokenizer, MAX_LENGTH), hf_tokenizer


def test_bpe_tokenizer_matches_hf_on_stress_texts(pair):
    in_graph, hf_tokenizer = pair
    assert isinstance(in_graph, ByteLevelBPETokenizer)
    assert mismatches(in_graph, hf_tokenizer, list(STRESS_TEXTS), MAX_LENGTH, batch=8) == []


def test_bpe_tokenizer_matches_hf_on_random_unicode(pair):
    in_graph, hf_tokenizer = pair
    texts = random_texts(FUZZ_TEXTS, seed=10, words=WORDS)
    assert mismatches(in_graph, hf_tokenizer, texts, MAX_LENGTH) == []


@pytest.mark.parametrize("max_length", [2, *(pytest.param(n, marks=pytest.mark.integration)
                                            for n in (3, 8))])  # make check: the tightest
def test_bpe_tokenizer_truncates_like_hf_at_and_past_the_limit(max_length):
    hf_tokenizer = roberta_tokenizer()
    in_graph = from_hf_tokenizer(hf_tokenizer, max_length)
    texts = ["", "a", "i feel", "i feel happy today", "<mask> <mask> <mask> <mask> <mask>",
             "x" * 50, "don't " * 10] + random_texts(200, seed=3, words=WORDS)
    lengths = [len(ids) for ids in hf_tokenizer(texts, truncation=True,
                                                 max_length=max_length)["input_ids"]]
    assert max(lengths) == max_length and min(lengths) == 2  # at and past the limit
    assert mismatches(in_graph, hf_tokenizer, texts, max_length) == []


def test_bpe_tokenizer_pads_with_the_pad_id_and_masks(pair):
    in_graph, hf_tokenizer = pair
    out = in_graph(tf.constant(["i", "i feel happy today"]))
    assert out["input_ids"].dtype == tf.int32 and out["attention_mask"].dtype == tf.int32
    short = len(hf_tokenizer("i")["input_ids"])
    assert out["input_ids"].numpy()[0, short:].tolist() == \
        [hf_tokenizer.pad_token_id] * (out["input_ids"].shape[1] - short)
    assert out["attention_mask"].numpy().sum(axis=1).tolist() == \
        [short, len(hf_tokenizer("i feel happy today")["input_ids"])]


def test_bpe_tokenizer_reads_invalid_utf8_as_the_replacement_character():
    hf_tokenizer = roberta_tokenizer()
    in_graph = from_hf_tokenizer(hf_tokenizer, MAX_LENGTH)
    raw = [b"caf\xe9 ok", b"\xff\xfe<mask>\xc3", b"ok \xed\xa0\x80 x"]
    out = in_graph(tf.constant(raw))
    for row, data in enumerate(raw):
        expected = hf_tokenizer(data.decode("utf-8", errors="replace"))["input_ids"]
        assert out["input_ids"].numpy()[row][: len(expected)].tolist() == expected
        assert out["attention_mask"].numpy()[row].sum() == len(expected)


def test_bpe_tokenizer_handles_an_empty_batch():
    in_graph = from_hf_tokenizer(roberta_tokenizer(), MAX_LENGTH)
    out = in_graph(tf.constant([], tf.string))
    assert out["input_ids"].shape[0] == 0 and out["attention_mask"].shape[0] == 0


def test_gpt2_style_tokenizer_without_template_matches_hf():
    """A byte-level BPE with no special tokens around the text (GPT-2) and an unknown token."""

    hf_tokenizer = trained_fast_tokenizer("byte-level-bpe")
    in_graph = from_hf_tokenizer(hf_tokenizer, 32)
    assert in_graph.description["template"] == [[], []]
    texts = list(STRESS_TEXTS) + random_texts(500, seed=4, words=["happy", "[CLS]", "[UNK]"])
    assert mismatches(in_graph, hf_tokenizer, texts, 32) == []


@pytest.mark.integration  # a Python process of its own
def test_bpe_tokenizer_saved_and_run_in_a_process_that_imports_only_tensorflow(tmp_path):
    hf_tokenizer = roberta_tokenizer()
    in_graph = from_hf_tokenizer(hf_tokenizer, MAX_LENGTH)
    tf.saved_model.save(in_graph, str(tmp_path / "tokenizer"))
    texts = list(STRESS_TEXTS[:-2]) + random_texts(500, seed=5, words=WORDS)
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    script = f"""
import json, sys
import numpy as np
import tensorflow as tf
tokenizer = tf.saved_model.load({str(tmp_path / "tokenizer")!r})
texts = json.load(open({str(tmp_path / "texts.json")!r}))
out = tokenizer(tf.constant(texts))
np.savez({str(tmp_path / "ids.npz")!r}, ids=out["input_ids"].numpy(),
         mask=out["attention_mask"].numpy())
unwanted = [m for m in ("transformers", "tokenizers", "tfemotion") if m in sys.modules]
assert not unwanted, unwanted
"""
    subprocess.run([sys.executable, "-I", "-c", script], check=True, timeout=300,
                   env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"})
    saved = np.load(tmp_path / "ids.npz")
    expected = hf_tokenizer(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    for row, want in enumerate(expected):
        assert saved["ids"][row][: saved["mask"][row].sum()].tolist() == want


def test_bytes_to_symbols_is_the_pre_tokenizers_alphabet():
    from tokenizers.pre_tokenizers import ByteLevel

    symbols = bytes_to_symbols()
    assert len(set(symbols)) == 256 and set(symbols) == set(ByteLevel.alphabet())
    assert [p for p, _ in ByteLevel(add_prefix_space=False).pre_tokenize_str(" a\n")] == ["Ġa", "Ċ"]


def _with_backend(change) -> object:
    """A RoBERTa tokenizer whose backend (tokenizer.json) was changed by ``change(spec)``."""
    from tokenizers import Tokenizer
    from transformers import RobertaTokenizerFast

    spec = json.loads(roberta_tokenizer().backend_tokenizer.to_str())
    change(spec)
    return RobertaTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)))


@pytest.mark.parametrize("change, setting", [
    (lambda s: s.update(normalizer={"type": "NFC"}), "normalizer"),
    (lambda s: s["model"].update(dropout=0.1), "model.dropout"),
    (lambda s: s["model"].update(byte_fallback=True), "model.byte_fallback"),
    (lambda s: s["pre_tokenizer"].update(use_regex=False), "pre_tokenizer.use_regex"),
    (lambda s: s["model"]["vocab"].pop("\u0100"), "model.vocab"),  # byte 0's symbol
])
def test_settings_it_cannot_reproduce_are_refused_by_name(change, setting):
    with pytest.raises(UnsupportedTokenizerError, match=f"tokenizer's {setting}="):
        from_hf_tokenizer(_with_backend(change), MAX_LENGTH)


def test_single_word_added_tokens_are_refused():
    from tokenizers import AddedToken

    hf_tokenizer = roberta_tokenizer()
    hf_tokenizer.add_tokens([AddedToken("newword", single_word=True)])
    with pytest.raises(UnsupportedTokenizerError, match="newword"):
        from_hf_tokenizer(hf_tokenizer, MAX_LENGTH)


def test_added_tokens_with_rstrip_match_hf():
    from tokenizers import AddedToken

    hf_tokenizer = roberta_tokenizer()
    hf_tokenizer.add_tokens([AddedToken("<emo>", rstrip=True, normalized=False),
                             AddedToken("<emotion>", normalized=False)])
    in_graph = from_hf_tokenizer(hf_tokenizer, MAX_LENGTH)
    texts = ["<emo>  happy", "<emotion> <emo>\u3000x", "a<emo><emotion>b", " <emo> "]
    assert mismatches(in_graph, hf_tokenizer, texts, MAX_LENGTH) == []


def test_max_length_must_leave_room_for_the_template():
    with pytest.raises(ValueError, match="max_length must leave room"):
        from_hf_tokenizer(roberta_tokenizer(), 1)


def test_character_classes_are_probed_once_then_read_from_the_disk_cache(tmp_path, monkeypatch):
    from tfemotion.tokenizers import byte_level_bpe as tokenizer_bpe

    # The classes this process has (probed, or read from the user's cache) stand in for a
    # fresh probe: the parity tests check what the probe finds; this one, that it is kept.
    probed = dict(tokenizer_bpe._char_classes())
    monkeypatch.setenv("TFEMOTION_CACHE", str(tmp_path))
    monkeypatch.setattr(tokenizer_bpe, "_CLASSES", {})
    monkeypatch.setattr(tokenizer_bpe, "_probe_classes", lambda: probed)
    fresh = tokenizer_bpe._char_classes()
    assert tokenizer_bpe.class_cache_file().parent == tmp_path
    assert tokenizer_bpe.class_cache_file().is_file()
    monkeypatch.setattr(tokenizer_bpe, "_CLASSES", {})
    monkeypatch.setattr(tokenizer_bpe, "_probe_classes", lambda: pytest.fail("probed again"))
    cached = tokenizer_bpe._char_classes()
    for key in ("starts", "kinds"):
        np.testing.assert_array_equal(cached[key], fresh[key])


def test_ignore_merges_takes_whole_vocabulary_words_as_hf_does():
    """Llama-3-style BPE: a word that is itself in the vocabulary skips the merges."""
    from tokenizers import Tokenizer
    from transformers import RobertaTokenizerFast

    spec = json.loads(roberta_tokenizer().backend_tokenizer.to_str())
    spec["model"]["ignore_merges"] = True
    # A vocabulary word the merges would not build: BPE alone would split it.
    spec["model"]["vocab"]["Ġzzyzx"] = len(spec["model"]["vocab"]) + 10
    hf_tokenizer = RobertaTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)))
    in_graph = from_hf_tokenizer(hf_tokenizer, MAX_LENGTH)
    texts = ["a zzyzx b", "zzyzx", " zzyzx zzyzx"] + random_texts(300, seed=6, words=WORDS)
    assert hf_tokenizer(" zzyzx")["input_ids"][1] == spec["model"]["vocab"]["Ġzzyzx"]
    assert mismatches(in_graph, hf_tokenizer, texts, MAX_LENGTH) == []
