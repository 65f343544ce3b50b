"""The way in: the in-graph tokenizer that reproduces a given Hugging Face fast tokenizer.

Example:
    >>> type(from_hf_tokenizer(tokenizer, max_length=64)).__name__
    'WordPieceTokenizer'
"""

from __future__ import annotations

from typing import Any, Optional

from tfemotion.tokenizers.byte_level_bpe import from_hf_bpe
from tfemotion.tokenizers.unigram import from_hf_unigram
from tfemotion.tokenizers.wordpiece import from_hf_wordpiece


def from_hf_tokenizer(tokenizer: Any, max_length: Optional[int] = None) -> Any:
    """Build the in-graph equivalent of a Hugging Face fast tokenizer.

    WordPiece tokenizers (BERT, DistilBERT, MiniLM, ELECTRA) give a ``WordPieceTokenizer``;
    byte-level BPE ones (RoBERTa, DistilRoBERTa, GPT-2) a ``ByteLevelBPETokenizer``;
    SentencePiece Unigram ones (XLM-R) a ``UnigramTokenizer``. All are ``tf.Module`` objects,
    saveable in a SavedModel, called on a ``[batch]`` string tensor.

    Args:
        tokenizer: PreTrainedTokenizerFast. A fast tokenizer of one of those families.
        max_length: int. Texts are truncated to this many tokens, special tokens included.
            Default: the tokenizer's ``model_max_length`` (capped at 512).

    Returns:
        The in-graph tokenizer.

    Raises:
        UnsupportedTokenizerError: another tokenizer family (WordLevel, character BPE...), or a
            setting the in-graph tokenizer cannot reproduce; the message names it.
        ValueError: ``max_length`` leaves no room for the special tokens.

    Example:
        >>> [type(from_hf_tokenizer(t, 64)).__name__ for t in (roberta_tokenizer, xlmr_tokenizer)]
        ['ByteLevelBPETokenizer', 'UnigramTokenizer']
    """
    if max_length is None:
        limit = getattr(tokenizer, "model_max_length", None) or 512
        max_length = int(min(limit, 512))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    family = type(backend.model).__name__ if backend is not None else None
    if family == "BPE":
        return from_hf_bpe(tokenizer, max_length)
    if family == "Unigram":
        return from_hf_unigram(tokenizer, max_length)
    return from_hf_wordpiece(tokenizer, max_length)  # refuses what it cannot reproduce
