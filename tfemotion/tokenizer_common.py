"""What every in-graph tokenizer shares: its error, the texts it is checked on, RE2 helpers.

The in-graph tokenizers (:mod:`tfemotion.tokenizer` for WordPiece, :mod:`tfemotion.tokenizer_bpe`
for byte-level BPE) turn a ``[batch]`` string tensor into the ``input_ids``/``attention_mask`` of
the Hugging Face fast tokenizer they were built from, with core TensorFlow ops only.
"""

from __future__ import annotations

# Texts every export is checked on: accents, cased text, CJK, emoji, control and zero-width
# characters, NBSP and other spaces, special tokens typed in the text, over-long words and
# texts, the empty string and a 100,000-character string.
STRESS_TEXTS: tuple[str, ...] = (
    "",
    "i feel happy",
    "Héllo Wörld! Ça va? naïve café résumé façade Ångström",
    "THE QUICK Brown fox JUMPS over The Lazy DOG",
    "中文字符和日本語のテキスト 한국어 텍스트 ｶﾀｶﾅ",
    "emoji 😀🎉👍🏽 family 👨‍👩‍👧 flags 🇫🇷🇯🇵 ❤️",
    "zero\u200bwidth\u200cnon\u200djoiner soft\u00adhyphen \ufeffbom ctl\x00\x01\x07\x1b\x7f\x85 "
    "tab\tnew\nline\rcr\x0bvt\x0cff",
    "non\u00a0breaking\u2009thin\u3000ideographic\u202fnarrow\u2028line\u2029para\u1680ogham",
    "ΟΔΥΣΣΕΥΣ ΣΊΣΥΦΟΣ σοφός ς",
    "İstanbul ŞİŞLİ ıiIİ Straße ẞ ǅ ǈ ﬁ ligature ① ＡＢＣ fullwidth ㎏",
    "[CLS] special [SEP] tokens[MASK]in text [UNK] [PAD] [cls] [mask] [[SEP]]",
    "<s>roberta</s> <mask>  <mask>x\u3000<mask> <pad><unk> <S> don't you're WE'LL it's 'd ''s ' 'm",
    "مرحبا بالعالم שָׁלוֹם नमस्ते ไทย Ελληνικά русский ТЕКСТ",
    "e\u0301 a\u0308 o\u0302\u0323 \u0301leading combining n\u0303\u0303",
    "@user http://t.co/AbC #hashtag!!! ...??? ,,, ;-) :D <3 $100 50% a&b",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟘𝟙𝟚 \U00020000\U0002a6d6 \U000e0001tag \U0010fffd private \ue000",
    "i feel " * 400,
    "supercalifragilisticexpialidocious" * 4,
    "a" * 100,
    "b" * 101,
    "x" * 100 + " " + "é" * 100 + " " + "é" * 101,
    "\u0000",
    "   \t\n  ",
    ("i didnt feel humiliated, Ünïcödé «quotes» — dash… 😀 中文 " * 2000)[:100_000],
    "x" * 100_000,
)


class UnsupportedTokenizerError(ValueError):
    """The tokenizer has a setting that no in-graph tokenizer reproduces exactly."""


def re2_literal(text: str) -> str:
    """``text`` as an RE2 pattern that matches it literally.

    Example:
        >>> re2_literal("<s>")
        '\\\\x{3C}s\\\\x{3E}'
    """
    return "".join(c if c.isalnum() else f"\\x{{{ord(c):X}}}" for c in text)
