"""The training input pipeline: length buckets padded per batch, the book's global padding."""

from __future__ import annotations

import numpy as np
import pytest

from tfemotion.config import FinetuneConfig
from tfemotion.data import tokenize
from tfemotion.training.inputs import bucket_boundaries, train_dataset


@pytest.fixture(scope="module")
def encoded_train(emotion_splits, tiny_bert_dir):
    from tfemotion.checkpoints import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_bert_dir))
    return tokenize(emotion_splits, tokenizer, 64)["train"], tokenizer


def _one_epoch(data):
    return [(x["input_ids"].numpy(), x["attention_mask"].numpy(), y.numpy())
            for x, y in data.dataset.take(data.steps)]


def test_train_dataset_batches_similar_lengths_padded_per_batch(encoded_train):
    encoded, tokenizer = encoded_train
    data = train_dataset(encoded, tokenizer, FinetuneConfig(batch_size=16, seed=1), 64)
    first, second = _one_epoch(data), _one_epoch(data)
    lengths = np.asarray(encoded["length"])
    for epoch in (first, second):
        real = sorted(int(n) for ids, mask, _ in epoch for n in mask.sum(axis=1))
        assert real == sorted(lengths.tolist())  # every example exactly once per epoch
        for ids, mask, _ in epoch:
            width = ids.shape[1]
            assert width % 8 == 0 and width - mask.sum(axis=1).max() < 8  # padded to the bucket
            assert (ids[mask == 0] == tokenizer.pad_token_id).all()
    assert data.examples == len(encoded)
    assert data.padded_tokens == sum(ids.size for ids, _, _ in first)
    assert data.real_tokens == lengths.sum()
    order = [tuple(y) for _, _, y in first]
    assert order != [tuple(y) for _, _, y in second]  # reshuffled between epochs


def test_train_dataset_book_keras_pads_every_text_to_the_longest(encoded_train):
    encoded, tokenizer = encoded_train
    data = train_dataset(encoded, tokenizer, FinetuneConfig(recipe="book-keras", batch_size=16), 64)
    widths = {ids.shape[1] for ids, _, _ in _one_epoch(data)}
    assert widths == {max(encoded["length"])}
    assert data.steps == len(encoded) // 16 + (len(encoded) % 16 > 0)


def test_bucket_boundaries_cover_the_longest_text():
    assert bucket_boundaries(8) == [9]
    assert bucket_boundaries(9) == [9, 17]
