"""Long texts read in windows against truncation, on an export of a run (issue 27, section 2).

Exports the run twice (``--long-texts windows`` and ``truncate``, not verified unless
``--verify``), then measures with ``serving_default`` (``tf.saved_model.load``):

1. accuracy on long texts built from the emotion test split: each tweet after 700-950 tokens of
   neutral filler sentences (meetings, invoices, timetables), so that its evidence lies past the
   first window of 512 tokens; windows against truncation, and the same tweets alone;
2. the cost of one text of 1,000 tokens against one of 512 (batch 1, windows export; goal
   <= 2.5x);
3. ``serving_default`` at batch 64 on ordinary emotion texts (the validation split), windows
   against truncation export, interleaved repeats (goal >= 0.95x).

The machine is printed first. On a shared 2-core machine the absolute figures are roughly halved:
compare ratios, measured in one run.

Usage:
    .venv/bin/python benchmarks/bench_long_texts.py --data DIR --run RUN_DIR
        [--texts 300] [--repeats 5] [--batches 10] [--rounds 3] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow loads)
from tfemotion import logs  # noqa: E402

logs.quiet()

# Neutral sentences: no emotion, the kind of text a long message carries before its point.
FILLER = (
    "The meeting has been moved to room 4B on the third floor.",
    "Please find attached the invoice for the March delivery of office supplies.",
    "The train to the airport leaves from platform 2 every fifteen minutes.",
    "Minutes of the last meeting were circulated to all members of the committee.",
    "The quarterly report lists revenue, costs and headcount by department.",
    "Invoice number 4471 is due within thirty days of the date of issue.",
    "The bus timetable changes on the first Monday of the month.",
    "Parking is available in the garage behind the main building.",
    "The agenda covers the budget, the schedule and any other business.",
    "Orders placed before noon are shipped on the same working day.",
    "The library opens at nine in the morning and closes at six in the evening.",
    "Attendees should bring a laptop and a copy of the draft proposal.",
    "The server maintenance window is on Sunday between two and four.",
    "Payment can be made by bank transfer using the reference on the invoice.",
    "The ferry timetable for the winter season is posted at the harbour office.",
    "The project plan has three phases: design, implementation and review.",
)


def read_split(path: Path) -> list[tuple[str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        text, label = line.rsplit(";", 1)
        rows.append((text, label))
    return rows


def filler_of(tokenizer, rng: random.Random, tokens: int) -> str:
    """Filler sentences until they hold at least ``tokens`` tokens."""
    sentences, count = [], 0
    while count < tokens:
        sentence = rng.choice(FILLER)
        sentences.append(sentence)
        count += len(tokenizer(sentence, add_special_tokens=False)["input_ids"])
    return " ".join(sentences)


def long_texts(tokenizer, rows, count: int, seed: int) -> list[tuple[str, str, str]]:
    """``(long text, tweet, label)``: each tweet after 700-950 tokens of filler."""
    rng = random.Random(seed)
    chosen = rng.sample(rows, count)
    return [(filler_of(tokenizer, rng, rng.randint(700, 950)) + " " + text, text, label)
            for text, label in chosen]


def export(run: Path, base: Path, long_texts_mode: str, verify: bool) -> str:
    from tfemotion.config import ExportConfig
    from tfemotion.export import export_run

    config = ExportConfig(base_path=str(base), name=long_texts_mode, verify=verify,
                          long_texts=long_texts_mode)
    started = time.perf_counter()
    report = export_run(run, config)
    print(f"[export] {long_texts_mode}: {report['path']} ({time.perf_counter() - started:.0f} s, "
          f"max_length {report['max_length']}, stride {report.get('stride')})", flush=True)
    return report["path"]


def accuracy(signature, texts: list[str], labels: list[str], batch: int = 16):
    import tensorflow as tf

    right, windows = 0, []
    for begin in range(0, len(texts), batch):
        out = signature(text=tf.constant(texts[begin: begin + batch]))
        got = [b.decode() for b in out["label"].numpy()]
        right += sum(g == w for g, w in zip(got, labels[begin: begin + batch]))
        windows += out["windows"].numpy().tolist()
    return right / len(texts), statistics.mean(windows)


def seconds_per_call(signature, texts: list[str], repeats: int) -> float:
    import tensorflow as tf

    batch = tf.constant(texts)
    signature(text=batch)  # trace and warm up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        signature(text=batch)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def text_of_tokens(tokenizer, tokens: int, seed: int = 0) -> str:
    """A filler text of exactly ``tokens`` tokens (without the special tokens)."""
    text = filler_of(tokenizer, random.Random(seed), tokens + 50)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:tokens]
    return tokenizer.decode(ids)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="emotion folder")
    parser.add_argument("--run", type=Path, required=True, help="a tfemotion train run folder")
    parser.add_argument("--texts", type=int, default=300, help="long texts built (issue: 300)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per cost figure")
    parser.add_argument("--batches", type=int, default=10,
                        help="batches of 64 validation texts per throughput round (3 rounds)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved throughput rounds (the ratio is their median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verify", action="store_true", help="verify both exports")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    args = parser.parse_args()

    import tensorflow as tf
    from compute_limit import machine

    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.runfolder import find_run

    where = machine()
    print(f"[machine] {where}", flush=True)
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print("[note] measured under contention (load above the core count): absolute figures "
              "are roughly halved; compare the ratios", flush=True)
    tokenizer = load_tokenizer(str(find_run(args.run).model))
    results = {"machine": where, "run": str(args.run), "texts": args.texts}
    with tempfile.TemporaryDirectory(prefix="bench-long-texts-") as base:
        paths = {mode: export(args.run, Path(base), mode, args.verify)
                 for mode in ("windows", "truncate")}
        serve = {mode: tf.saved_model.load(path).signatures["serving_default"]
                 for mode, path in paths.items()}

        rows = long_texts(tokenizer, read_split(args.data / "test.txt"), args.texts, args.seed)
        texts, tweets, labels = (list(column) for column in zip(*rows))
        for mode in ("windows", "truncate"):
            score, mean_windows = accuracy(serve[mode], texts, labels)
            results[f"long_accuracy_{mode}"] = score
            print(f"[accuracy] {len(texts)} long texts, {mode}: {score:.3f} "
                  f"(mean windows {mean_windows:.2f})", flush=True)
        score, _ = accuracy(serve["windows"], tweets, labels)
        results["tweets_alone_accuracy"] = score
        print(f"[accuracy] the same tweets alone: {score:.3f}", flush=True)

        cost = {n: seconds_per_call(serve["windows"], [text_of_tokens(tokenizer, n)],
                                    args.repeats) for n in (510, 1000)}
        results["cost_1000_vs_512"] = cost[1000] / cost[510]
        print(f"[cost] batch 1, windows export: 512 tokens {cost[510] * 1000:.0f} ms, 1,000 "
              f"tokens {cost[1000] * 1000:.0f} ms: {cost[1000] / cost[510]:.2f}x (goal <= 2.5x)",
              flush=True)

        ordinary = [t for t, _ in read_split(args.data / "validation.txt")][: 64 * args.batches]
        batches = [ordinary[i: i + 64] for i in range(0, len(ordinary), 64)]
        rates = {"windows": [], "truncate": []}
        for mode in rates:
            seconds_per_call(serve[mode], batches[0], 1)  # trace both first
        for _ in range(args.rounds):  # interleaved rounds: load changes hit both modes alike
            for mode in rates:
                started = time.perf_counter()
                for batch in batches:
                    serve[mode](text=tf.constant(batch))
                rates[mode].append(len(ordinary) / (time.perf_counter() - started))
        best = {mode: max(values) for mode, values in rates.items()}
        ratio = statistics.median(w / t for w, t in zip(rates["windows"], rates["truncate"]))
        results["batch64_texts_per_s"] = best
        results["batch64_ratio"] = ratio
        print(f"[throughput] serving_default batch 64, {len(ordinary)} validation texts, "
              f"{args.rounds} interleaved rounds: best windows {best['windows']:.0f} texts/s, "
              f"truncate {best['truncate']:.0f} texts/s; median ratio of the rounds "
              f"{ratio:.3f}x (goal >= 0.95x)", flush=True)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
