"""What the in-graph tokenizers share: refusals, the special-token template, RE2 literals."""

from __future__ import annotations

import re

import pytest
import tensorflow as tf

from tfemotion.tokenizers.common import (STRESS_TEXTS, UnsupportedTokenizerError, re2_literal,
                                         refuse_unless, special_template, template_within)


def test_refuse_unless_names_the_family_setting_and_what_is_supported():
    refuse_unless(True, "Unigram", "normalizer", "x", "y")
    with pytest.raises(UnsupportedTokenizerError,
                       match=r"In-graph Unigram cannot reproduce the tokenizer's dropout=0.1 "
                             r"\(supported: none\)"):
        refuse_unless(False, "Unigram", "dropout", 0.1, "none")


def test_re2_literals_match_exactly_the_text_they_quote():
    for text in ("<s>", "[CLS]", "a.b*c", "(x|y)", "\\d", "é中😀"):
        pattern = re2_literal(text)
        assert bool(tf.strings.regex_full_match(text, pattern))
        assert not bool(tf.strings.regex_full_match(text + "x", pattern))


def test_the_template_is_read_off_the_tokenizer(tiny_bert_dir, roberta_hf_tokenizer):
    from transformers import AutoTokenizer

    assert special_template(roberta_hf_tokenizer) == ([0], [2])
    bert = AutoTokenizer.from_pretrained(tiny_bert_dir)
    assert special_template(bert) == ([bert.cls_token_id], [bert.sep_token_id])
    assert template_within(bert, 8) == ([bert.cls_token_id], [bert.sep_token_id])
    with pytest.raises(ValueError, match="max_length"):
        template_within(bert, 1)


def test_the_stress_texts_hold_what_breaks_tokenizers():
    assert "" in STRESS_TEXTS and max(map(len, STRESS_TEXTS)) == 100_000
    assert any(re.search("[\u0300-\u036f]", t) for t in STRESS_TEXTS)  # combining marks
    assert any("\x00" in t for t in STRESS_TEXTS)


MEMORY_PROBE = """
import json, sys, tensorflow as tf
from pathlib import Path
from tfemotion.tokenizers import from_hf_tokenizer
from transformers import AutoTokenizer
sys.path.insert(0, sys.argv[2])
import support

def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

folder, grown = sys.argv[1], {}
# One 100,000-character word among 2,000 short ones: a request TF Serving accepts.
# (and one of 50,000 characters no vocabulary holds: a run of unknown pieces).
texts = ["x" * 100000 + " end", "\ua66e" * 50000] + ["ab c de fg " * 50] * 10
for name, make in (("wordpiece", lambda: AutoTokenizer.from_pretrained(folder)),
                   ("bpe", support.roberta_tokenizer),
                   ("unigram", lambda: support.xlmr_tokenizer(Path(sys.argv[3])))):
    in_graph = from_hf_tokenizer(make(), 64)
    in_graph(tf.constant(["warm up"]))
    open("/proc/self/clear_refs", "w").write("5")  # the peak starts again from here
    before = peak_kb()
    in_graph(tf.constant(texts))
    grown[name] = (peak_kb() - before) // 1024
print(json.dumps(grown))
"""


@pytest.mark.integration  # a Python process of its own
def test_a_long_word_among_many_takes_memory_in_proportion_to_the_text(tiny_bert_dir, tmp_path):
    """value_rowids() and tf.repeat of ragged tensors build [rows, longest row] masks: with
    one 100,000-character word among 2,000 others, gigabytes. The tokenizers avoid them."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("measures peak memory through Linux's /proc")
    done = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(tiny_bert_dir),
                           str(Path(__file__).parents[1]), str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    grown = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(grown) == {"wordpiece", "bpe", "unigram"}
    assert max(grown.values()) < 300, grown  # megabytes; a [rows, longest] mask took gigabytes
