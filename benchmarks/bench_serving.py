"""Benchmark serving an exported emotion classifier on CPU.

On the texts of a ``text;label`` file (the emotion validation split: 2,000 texts) it
measures texts/s and p50/p99 latency per call of:

1. ``serving_default`` (raw text in, in-graph tokenizer) in this process, batch 1 and batch 64,
   with ``tf.saved_model.load`` and in a TF1 session as TensorFlow Serving runs it, with
   TensorFlow's default session settings and with serving/session.config's (batch 1, 32, 64);
2. ``encoded`` fed with ids from the Hugging Face tokenizer (dynamic padding per batch), batch 1
   and 64, with the tokenizer's own time apart: the difference to 1. is what in-graph
   tokenization costs;
3. ``pipeline("text-classification", framework="tf", dtype=None)`` (``dtype=None``: transformers 4.57's default, "auto", calls into PyTorch and fails without it) on the
   same texts, batch_size 64 and one text per call;
4. the development server (``tfemotion serve``): 8 and 32 concurrent gRPC clients sending one
   text per request, without and with TensorFlow Serving's batching, for each batching file
   (default: serving/batching-cpu.config, the balanced CPU choices, and
   serving/batching-cpu-throughput.config, for servers kept busy), all with
   serving/session.config, the server in its own process as deployed: texts/s, p50/p99, errors.

With ``--compare-export`` (e.g. the same run exported with ``--precision bfloat16``), that
export's session rows too, and the ratio at batch 64 against the first (the compute precision of
each is read from its export record). ``--profile`` prints where the time of one batch of 64
goes, by op type (TensorFlow's step stats), for each export.

Targets: serving_default at batch 64 >= 220 texts/s and >= 80% of ``encoded``'s throughput;
batch-1 p50 < 20 ms; with batching, 32 clients get at least twice the texts/s of no batching,
with 0 errors.

Usage:
    python benchmarks/bench_serving.py --data emotion/validation.txt \\
        --export runs/emotion/serving/emotion/1 --model runs/emotion/run/model [--limit 500]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import tfemotion  # noqa: E402,F401  (Keras 2 before TensorFlow loads)
from tfemotion import logs  # noqa: E402

logs.quiet()  # no TensorFlow start-up noise between the figures



# The deployment files, next to this folder.
SERVING = Path(__file__).resolve().parents[1] / "serving"

def read_texts(path: Path, limit: int | None) -> list[str]:
    """Texts of a ``text;label`` file."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [line.rsplit(";", 1)[0] for line in lines]
    return texts[:limit] if limit else texts


def precision_of(version_dir: Path) -> str:
    """The compute precision in an export's record (exports before it existed: float32)."""
    record = version_dir / "assets.extra" / "tfemotion_export.json"
    info = json.loads(record.read_text()) if record.is_file() else {}
    return info.get("precision", "float32")


def find_version(path: Path) -> Path:
    """A version folder, or the highest version under BASE/NAME."""
    from tfemotion.export.signatures import find_export

    found = find_export(path)
    if found is None:
        raise SystemExit(f"No SavedModel version under {path}")
    return found


def summary(name: str, batch: int, seconds: list[float], texts: int,
            wall: float | None = None, **extra) -> dict:
    """Throughput (over ``wall`` time if given, else summed call time) and latency figures."""
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]
    row = {"name": name, "batch": batch, "texts": texts, "calls": len(seconds),
           "texts_per_s": texts / (wall or sum(seconds)),
           "p50_ms": 1000 * statistics.median(ordered),
           "p99_ms": 1000 * p99}
    row.update(extra)
    print(f"{name:<36} {batch:>5} {texts:>6} {row['texts_per_s']:>9.1f} "
          f"{row['p50_ms']:>8.1f} {row['p99_ms']:>8.1f}  "
          + " ".join(f"{k}={v}" for k, v in extra.items()), flush=True)
    return row


def batches(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def timed(function, calls) -> list[float]:
    """Run function on each call's arguments; return the seconds of each call."""
    function(calls[0])  # warm-up: graph set-up, first allocation
    seconds = []
    for call in calls:
        start = time.perf_counter()
        function(call)
        seconds.append(time.perf_counter() - start)
    return seconds


# region measurements
def bench_raw_text(loaded, texts: list[str], sizes: tuple[int, ...]) -> list[dict]:
    import tensorflow as tf

    serve = loaded.signatures["serving_default"]
    rows = []
    for size in sizes:
        seconds = timed(lambda b: serve(text=tf.constant(b))["probabilities"].numpy(),
                        batches(texts, size))
        rows.append(summary("serving_default (raw text)", size, seconds, len(texts)))
    return rows


def bench_session(version_dir: Path, texts: list[str], sizes: tuple[int, ...],
                  session_config: Path | None, suffix: str = "") -> list[dict]:
    """serving_default through TensorFlow Serving's loading path, with ``session_config``."""
    from tfemotion.export.servable import SessionServable, read_session_config

    servable = SessionServable(version_dir, read_session_config(session_config)
                               if session_config else None)
    name = f"session, {session_config.name if session_config else 'TF defaults'}{suffix}"
    rows = []
    try:
        for size in sizes:
            seconds = timed(lambda b: servable.run("serving_default",
                                                   {"text": np.array(b, dtype=object)}),
                            batches(texts, size))
            rows.append(summary(name, size, seconds, len(texts)))
    finally:
        servable.close()
    return rows


def op_profile(version_dir: Path, texts: list[str], session_config: Path | None,
               top: int = 12) -> dict[str, float]:
    """Milliseconds per op type of serving_default on a batch of 64, summed over the ops
    (TensorFlow's step stats of the session path; the enclosing call ops are left out)."""
    import collections

    import tensorflow as tf

    from tfemotion.export.servable import SessionServable, read_session_config

    servable = SessionServable(version_dir, read_session_config(session_config)
                               if session_config else None)
    signature = servable.signature("serving_default")
    feeds = {signature.inputs["text"].name: np.array(texts[:64], dtype=object)}
    fetches = [t.name for t in signature.outputs.values()]
    options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
    totals: collections.Counter = collections.Counter()
    runs = 3
    try:
        for _ in range(2):
            servable.session.run(fetches, feeds)
        for _ in range(runs):
            metadata = tf.compat.v1.RunMetadata()
            servable.session.run(fetches, feeds, options=options, run_metadata=metadata)
            for device in metadata.step_stats.dev_stats:
                for node in device.node_stats:
                    label = node.timeline_label
                    kind = label.split(" = ", 1)[1].split("(", 1)[0] if " = " in label else "?"
                    if kind not in ("StatefulPartitionedCall", "PartitionedCall", "While"):
                        totals[kind] += node.all_end_rel_micros / 1000 / runs
    finally:
        servable.close()
    whole = sum(totals.values())
    print(f"where one batch of 64 goes ({version_dir}): {whole:.0f} ms of op time")
    for kind, ms in totals.most_common(top):
        print(f"  {kind:<28} {ms:8.1f} ms {ms / whole:6.1%}")
    return dict(totals)


def bench_encoded(loaded, tokenizer, max_length: int, texts: list[str],
                  sizes: tuple[int, ...]) -> list[dict]:
    import tensorflow as tf

    encoded = loaded.signatures["encoded"]
    rows = []
    for size in sizes:
        parts = batches(texts, size)
        start = time.perf_counter()
        ids = [tokenizer(b, truncation=True, max_length=max_length, padding=True,
                         return_tensors="np") for b in parts]
        tokenize_seconds = time.perf_counter() - start
        calls = [{k: tf.constant(e[k].astype("int32")) for k in ("input_ids", "attention_mask")}
                 for e in ids]
        seconds = timed(lambda c: encoded(**c)["probabilities"].numpy(), calls)
        rows.append(summary("encoded (ids from HF tokenizer)", size, seconds, len(texts),
                            hf_tokenizer_ms_per_call=round(1000 * tokenize_seconds / len(parts),
                                                           2)))
    return rows


def bench_pipeline(model_dir: str, texts: list[str], single: int) -> list[dict]:
    from transformers import pipeline

    from tfemotion.checkpoints import load_tokenizer
    from tfemotion.models import load_run_model

    model = load_run_model(model_dir)
    pipe = pipeline("text-classification", model=model, tokenizer=load_tokenizer(model_dir),
                    framework="tf", dtype=None)
    pipe(texts[:2], truncation=True)
    start = time.perf_counter()
    pipe(texts, batch_size=64, truncation=True)
    total = time.perf_counter() - start
    rows = [summary('pipeline(framework="tf")', 64, [total], len(texts), note="one call")]
    seconds = timed(lambda t: pipe(t, truncation=True), texts[:single])
    rows.append(summary('pipeline(framework="tf")', 1, seconds, len(seconds)))
    return rows


def bench_devserver(version_dir: Path, texts: list[str], clients: int, requests: int,
                    batching: Path | None = None, session_config: Path | None = None) -> dict:
    """``clients`` concurrent gRPC clients, one text per request, against the dev server run as
    its own process (``tfemotion serve``, as deployed), with TensorFlow Serving's batching and
    the parameters of ``batching`` when given, and the session settings of ``session_config``."""
    import socket
    import subprocess
    import sys

    from tfemotion.serving import ServingClient, ServingError

    with tempfile.TemporaryDirectory() as base, socket.socket() as probe:
        (Path(base) / "model").mkdir()
        (Path(base) / "model" / version_dir.name).symlink_to(version_dir.resolve())
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        command = [sys.executable, "-m", "tfemotion", "serve", "--base-path", base,
                   "--name", "model", "--port", str(port), "--rest-port", "none",
                   "--poll-interval", "3600"]  # default flags: the workers follow the batching
        if batching:
            command += ["--enable-batching", "--batching-parameters-file", str(batching)]
        if session_config:
            command += ["--session-config", str(session_config)]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        address = f"127.0.0.1:{port}"
        try:
            with ServingClient(address, name="model", retries=30, retry_backoff=0.5) as client:
                client.predict([texts[0]])  # waits until the server answers
            latencies: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            ready = threading.Barrier(clients + 1)

            def worker(k: int) -> None:
                with ServingClient(address, name="model", retries=0) as client:
                    client.predict([texts[k % len(texts)]])  # warm-up; learns the label names
                    ready.wait()
                    for j in range(requests):
                        text = texts[(k * requests + j) % len(texts)]
                        start = time.perf_counter()
                        try:
                            client.predict([text])
                        except ServingError as error:
                            with lock:
                                errors.append(str(error))
                            continue
                        with lock:
                            latencies.append(time.perf_counter() - start)

            threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
            for thread in threads:
                thread.start()
            ready.wait()
            start = time.perf_counter()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - start
        finally:
            server.terminate()
            server.wait(timeout=60)
    # Concurrent calls: throughput over wall time, not over summed latencies.
    name = f"dev server {clients} clients x {requests}" + (
        f", batching ({batching.name})" if batching else "")
    row = summary(name, 1, latencies, len(latencies), wall=wall, errors=len(errors))
    if errors:
        print("first error:", errors[0])
    return row
# endregion


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", required=True, type=Path,
                        help="version folder BASE/NAME/VERSION (or BASE/NAME: highest version)")
    parser.add_argument("--model", help="the Hugging Face model folder the export came from "
                        "(tokenizer and pipeline); without it parts 2 and 3 are skipped")
    parser.add_argument("--data", type=Path, required=True,
                        help="text;label file (the emotion validation.txt)")
    parser.add_argument("--limit", type=int, help="use only the first N texts")
    parser.add_argument("--pipeline-single", type=int, default=200,
                        help="texts for the pipeline's one-text-per-call latency")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32],
                        help="concurrent clients of the dev server runs (default: 8 32)")
    parser.add_argument("--requests", type=int, default=200,
                        help="requests per client (default: %(default)s; fewer weigh the first "
                             "batch cycles, while clients and batches fall into step, more)")
    parser.add_argument("--batching-config", type=Path, nargs="+",
                        default=[SERVING / "batching-cpu.config",
                                 SERVING / "batching-cpu-throughput.config"],
                        help="batching parameters of the batched runs, one run per file "
                             "(default: serving/batching-cpu.config and "
                             "serving/batching-cpu-throughput.config, the CPU choices)")
    parser.add_argument("--session-config", type=Path,
                        default=SERVING / "session.config",
                        help="session settings of the dev server runs (default: "
                             "serving/session.config, what run-cpu.sh gives TF Serving)")
    parser.add_argument("--compare-export", type=Path,
                        help="another export of the same model (e.g. --precision bfloat16): its "
                             "session rows and its ratio to the first at batch 64")
    parser.add_argument("--profile", action="store_true",
                        help="print the op types one batch of 64 spends its time in")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    import tensorflow as tf

    version_dir = find_version(args.export)
    texts = read_texts(args.data, args.limit)
    info_file = version_dir / "assets.extra" / "tfemotion_export.json"
    info = json.loads(info_file.read_text()) if info_file.is_file() else {}
    from compute_limit import machine

    print(f"[machine] {machine()}", flush=True)
    load_before = os.getloadavg()
    print(f"export {version_dir} | {len(texts)} texts from {args.data} | {os.cpu_count()} CPUs, "
          f"load average {load_before[0]:.2f} | TensorFlow {tf.__version__}")
    print(f"{'measurement':<36} {'batch':>5} {'texts':>6} {'texts/s':>9} {'p50 ms':>8} "
          f"{'p99 ms':>8}")
    loaded = tf.saved_model.load(str(version_dir))
    rows = bench_raw_text(loaded, texts, (1, 64))
    for session_config in (None, args.session_config):
        rows += bench_session(version_dir, texts, (1, 32, 64), session_config)
    compared = {}
    if args.compare_export:
        other = find_version(args.compare_export)
        other_rows = bench_session(other, texts, (1, 32, 64), args.session_config,
                                   f", {precision_of(other)} export")
        rows += other_rows
        mine = {r["batch"]: r for r in rows if r["name"] == f"session, "
                f"{args.session_config.name}"}
        ratio = other_rows[-1]["texts_per_s"] / mine[64]["texts_per_s"]
        compared = {"export": str(other), "precision": precision_of(other),
                    "ratio_at_64": ratio}
        print(f"{precision_of(other)} export / {precision_of(version_dir)} export at batch 64: "
              f"{ratio:.2f}x the texts/s")
    if args.profile:
        for folder in filter(None, (version_dir, args.compare_export and
                                    find_version(args.compare_export))):
            op_profile(folder, texts, args.session_config)
    if args.model:
        from tfemotion.checkpoints import load_tokenizer

        tokenizer = load_tokenizer(args.model)
        max_length = int(info.get("max_length") or min(tokenizer.model_max_length, 512))
        rows += bench_encoded(loaded, tokenizer, max_length, texts, (1, 64))
        from compute_limit import for_texts

        limit = for_texts(args.model, texts, max_length)
        print(limit.describe())
        best = max(r["texts_per_s"] for r in rows if r["batch"] == 64)
        print(f"fastest batch of 64 = {best / limit.texts_per_s():.0%} of the float32 limit")
        if not args.skip_pipeline:
            rows += bench_pipeline(args.model, texts, args.pipeline_single)
    del loaded
    batching = {}
    for clients in args.clients:
        for config in (None, *args.batching_config):
            row = bench_devserver(version_dir, texts, clients, args.requests, config,
                                  args.session_config)
            rows.append(row)
            batching[(clients, config)] = row

    by_key = {(r["name"], r["batch"]): r for r in rows}
    raw64 = by_key[("serving_default (raw text)", 64)]["texts_per_s"]
    raw1 = by_key[("serving_default (raw text)", 1)]["p50_ms"]
    checks = {"serving_default@64 >= 220 texts/s": raw64 >= 220,
              "batch-1 p50 < 20 ms": raw1 < 20}
    encoded64 = by_key.get(("encoded (ids from HF tokenizer)", 64))
    if encoded64:
        checks["serving_default@64 >= 80% of encoded@64"] = raw64 >= 0.8 * encoded64[
            "texts_per_s"]
    for clients in args.clients:
        off = batching[(clients, None)]
        errors = off.get("errors", 0)
        for config in args.batching_config:
            on = batching[(clients, config)]
            gain = on["texts_per_s"] / off["texts_per_s"]
            print(f"batching ({config.name}) with {clients} clients: {gain:.2f}x the texts/s "
                  "of no batching")
            if clients == max(args.clients):
                checks[f"batching@{clients} clients >= 2x no batching ({config.name})"] = gain >= 2
            errors += on.get("errors", 0)
        checks[f"0 errors with {clients} clients"] = errors == 0
    print("targets:", ", ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items()))
    print(f"load average before/after: {load_before[0]:.2f} / {os.getloadavg()[0]:.2f} "
          "(other work on the machine skews the figures)")
    result = {"export": str(version_dir), "texts": len(texts), "rows": rows, "targets": checks,
              "compared": compared,
              "load_average": [load_before[0], os.getloadavg()[0]], "cpus": os.cpu_count()}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
