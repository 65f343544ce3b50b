"""In-graph tokenizers: Hugging Face's tokenization in core TensorFlow ops, for exports.

One module per algorithm, as keras-hub's ``src/tokenizers/``, over what they share:

- ``common``: the error, the stress texts, added-token splitting, the special-token template;
- ``wordpiece``: BERT's WordPiece (BERT, DistilBERT, MiniLM, ELECTRA);
- ``byte_level_bpe``: byte-level BPE (RoBERTa, DistilRoBERTa, GPT-2);
- ``unigram``: SentencePiece Unigram (XLM-R);
- ``hugging_face``: ``from_hf_tokenizer``, which picks one of them for a fast tokenizer.

This package imports nothing else of tfemotion.
"""

from tfemotion.tokenizers.byte_level_bpe import ByteLevelBPETokenizer
from tfemotion.tokenizers.common import STRESS_TEXTS, UnsupportedTokenizerError
from tfemotion.tokenizers.hugging_face import from_hf_tokenizer
from tfemotion.tokenizers.unigram import UnigramTokenizer
from tfemotion.tokenizers.wordpiece import WordPieceTokenizer

__all__ = ["STRESS_TEXTS", "ByteLevelBPETokenizer", "UnigramTokenizer",
           "UnsupportedTokenizerError", "WordPieceTokenizer", "from_hf_tokenizer"]
