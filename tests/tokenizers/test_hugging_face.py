"""from_hf_tokenizer: the in-graph tokenizer of each family, and a clear refusal otherwise."""

from __future__ import annotations

import pytest
from support import trained_fast_tokenizer

from tfemotion.tokenizers import (ByteLevelBPETokenizer, UnigramTokenizer,
                                  UnsupportedTokenizerError, WordPieceTokenizer, from_hf_tokenizer)


@pytest.mark.integration  # builds all three (seconds); make check builds each in its own module
def test_each_family_gets_its_in_graph_tokenizer(tiny_bert_dir, roberta_hf_tokenizer,
                                                 xlmr_hf_tokenizer):
    from transformers import AutoTokenizer

    bert = AutoTokenizer.from_pretrained(tiny_bert_dir)
    assert isinstance(from_hf_tokenizer(bert, 32), WordPieceTokenizer)
    assert isinstance(from_hf_tokenizer(roberta_hf_tokenizer, 32), ByteLevelBPETokenizer)
    assert isinstance(from_hf_tokenizer(xlmr_hf_tokenizer, 32), UnigramTokenizer)
    assert from_hf_tokenizer(bert).max_length == 64  # the tokenizer's own model_max_length


def test_from_hf_tokenizer_rejects_other_tokenizer_families_by_name():
    with pytest.raises(UnsupportedTokenizerError, match="model must be WordPiece.*WordLevel"):
        from_hf_tokenizer(trained_fast_tokenizer("word-level"), max_length=16)


def test_from_hf_tokenizer_rejects_slow_tokenizer(tiny_bert_dir):
    from transformers import BertTokenizer

    with pytest.raises(UnsupportedTokenizerError, match="fast"):
        from_hf_tokenizer(BertTokenizer.from_pretrained(tiny_bert_dir), max_length=16)
