"""Long texts in windows: the in-graph windows are Hugging Face's overflowing tokens, id for id."""

from __future__ import annotations

import pytest
import tensorflow as tf

from tfemotion.tokenizers import STRESS_TEXTS, from_hf_tokenizer
from tfemotion.tokenizers.windows import (check_stride, cut_windows, pool_windows, text_windows,
                                          token_limit, window_count, window_size)

from support import random_texts, tiny_vocab

# (max_length, stride): no overlap, a small one, the largest one (stride = window - 1).
SETTINGS = ((16, 0), (32, 4), (20, 17))
TEXTS = ["", "hi", "i feel " * 40, "happy sad " * 100 + "[CLS] <s> x </s>", "a" * 300,
         *[t for t in STRESS_TEXTS if len(t) < 5000]]


def hf_windows(tokenizer, texts, max_length, stride):
    out = tokenizer(texts, truncation=True, max_length=max_length, stride=stride,
                    return_overflowing_tokens=True)
    return out["input_ids"], out["overflow_to_sample_mapping"]


def in_graph_windows(in_graph, texts, stride, max_windows=100_000):
    out = text_windows(in_graph, tf.constant(texts), stride, max_windows)
    ids = [row[: mask.sum()].tolist() for row, mask in
           zip(out["input_ids"].numpy(), out["attention_mask"].numpy())]
    return ids, out["text"].numpy().tolist(), out["windows"].numpy().tolist()


def assert_parity(hf_tokenizer, texts):
    for max_length, stride in SETTINGS:
        in_graph = from_hf_tokenizer(hf_tokenizer, max_length)
        want_ids, want_text = hf_windows(hf_tokenizer, texts, max_length, stride)
        ids, text, windows = in_graph_windows(in_graph, texts, stride)
        assert text == want_text, (max_length, stride)
        assert windows == [want_text.count(i) for i in range(len(texts))]
        wrong = [(texts[t][:60], w[:12], g[:12]) for t, w, g in zip(text, want_ids, ids) if w != g]
        assert ids == want_ids, (max_length, stride, len(wrong), wrong[:3])


@pytest.fixture(scope="module")
def bert(tiny_bert_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert_dir)


def test_wordpiece_windows_are_hugging_face_overflowing_tokens(bert):
    assert_parity(bert, TEXTS + random_texts(150, seed=3, words=tiny_vocab()))


@pytest.mark.integration  # builds a byte-level BPE and a Unigram tokenizer (seconds each)
def test_bpe_and_unigram_windows_are_hugging_face_overflowing_tokens(roberta_hf_tokenizer,
                                                                     xlmr_hf_tokenizer):
    extra = random_texts(150, seed=4, words=["happy", "<s>", "</s>", "<mask>", "feel"])
    assert_parity(roberta_hf_tokenizer, TEXTS + extra)
    assert_parity(xlmr_hf_tokenizer, TEXTS + extra)


def test_texts_within_the_window_get_the_truncating_tokenizer_ids(bert):
    in_graph = from_hf_tokenizer(bert, 32)
    texts = ["i feel happy", "", "so sad today and tomorrow"]
    ids, text, windows = in_graph_windows(in_graph, texts, stride=8)
    out = in_graph(tf.constant(texts))
    assert windows == [1, 1, 1] and text == [0, 1, 2]
    assert ids == [row[: mask.sum()].tolist() for row, mask in
                   zip(out["input_ids"].numpy(), out["attention_mask"].numpy())]


def test_a_request_past_the_window_cap_fails_with_a_clear_message(bert):
    in_graph = from_hf_tokenizer(bert, 16)  # windows of 14 tokens
    texts = ["i feel " * 20, "i feel " * 20]  # 40 tokens: 3 windows each at stride 0
    assert in_graph_windows(in_graph, texts, 0, max_windows=6)[2] == [3, 3]
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than 5 windows.*max_windows"):
        in_graph_windows(in_graph, texts, 0, max_windows=5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than 2 windows"):
        in_graph_windows(in_graph, ["i feel " * 5000], 0, max_windows=2)  # one text alone


def test_window_arithmetic():
    assert window_count(tf.constant([0, 1, 10, 11, 18, 19], tf.int64), 10, 2).numpy().tolist() \
        == [1, 1, 1, 2, 2, 3]
    assert token_limit(10, 2, 1) == 11
    out = cut_windows(tf.ragged.constant([[1, 2, 3, 4, 5, 6, 7], [9]], tf.int64), 4, 2)
    assert out["windows"].to_list() == [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7], [9]]
    assert out["text"].numpy().tolist() == [0, 0, 0, 1]
    assert out["count"].numpy().tolist() == [3, 1]


def test_stride_must_leave_the_windows_moving(bert):
    check_stride(0, 14)
    with pytest.raises(ValueError, match=r"stride must be in \[0, 14\).*stride=14"):
        check_stride(14, 14)
    with pytest.raises(ValueError, match="stride=30"):
        text_windows(from_hf_tokenizer(bert, 32), tf.constant(["x"]), 30, 8)
    assert window_size(from_hf_tokenizer(bert, 32)) == 30


def test_pooling_takes_each_texts_windows_only():
    values = tf.constant([[1.0, -1.0], [3.0, 5.0], [7.0, 0.0]])
    text = tf.constant([0, 0, 1], tf.int64)
    assert pool_windows(values, text, tf.constant(2, tf.int64)).numpy().tolist() == \
        [[2.0, 2.0], [7.0, 0.0]]
    assert pool_windows(values, text, tf.constant(2, tf.int64), "max").numpy().tolist() == \
        [[3.0, 5.0], [7.0, 0.0]]
    with pytest.raises(ValueError, match="how="):
        pool_windows(values, text, tf.constant(2, tf.int64), "sum")
