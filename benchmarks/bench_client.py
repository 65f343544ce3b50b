"""The light client (``client/``, ``tfemotion-query``) in a fresh environment of its own.

1. Creates a virtual environment with only ``./client`` installed (``pip install ./client``,
   from the package cache when it is warm) and prints its ``pip list``: no TensorFlow, Keras,
   PyTorch or NumPy; and the size of its ``lib/`` folder.
2. Starts the development server (``tfemotion serve``, its own process, as deployed) on an export.
3. Runs ``tfemotion-query "TEXT"`` from that environment N times, end to end as a subprocess (the
   interpreter's start, the imports, one Predict and the label names' Classify, the printing),
   and beside it ``tfemotion query "TEXT"`` of tfemotion's environment: wall time p50 and max,
   peak resident memory of each call (the child's ``ru_maxrss``, taken from a small launcher).

Goals (issue 25): ``tfemotion-query`` <= 0.5 s wall and <= 100 MB peak per call; no TensorFlow,
Keras or PyTorch installed; ``lib/`` <= 120 MB. The machine is printed first: figures taken
while other work runs are for comparison within one run only.

Usage:
    python benchmarks/bench_client.py --export runs/emotion/serving/emotion/1 [--calls 20]
    python benchmarks/bench_client.py --export runs/emotion/serving/emotion --keep-venv DIR
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "tf-keras", "keras", "torch", "numpy", "jax")
GOALS = {"wall_p50": 0.5, "peak_mb": 100.0, "lib_mb": 120.0}
TEXT = "i feel so happy and grateful today"


def make_venv(folder: Path) -> dict:
    """A fresh environment with ``./client`` installed: its packages and the size of ``lib/``."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--disable-pip-version-check", str(REPO / "client")], check=True)
    seconds = time.perf_counter() - start
    listed = subprocess.run([str(folder / "bin" / "python"), "-m", "pip", "list",
                             "--disable-pip-version-check", "--format", "freeze"],
                            check=True, capture_output=True, text=True).stdout.split()
    size = sum(path.stat().st_size for path in (folder / "lib").rglob("*")
               if path.is_file() and not path.is_symlink())
    names = [line.split("==")[0].lower() for line in listed]
    return {"seconds": seconds, "packages": listed, "lib_mb": size / 1e6,
            "heavy": [name for name in names if name in HEAVY]}


def start_server(export: Path) -> tuple[subprocess.Popen, str, str]:
    """``tfemotion serve`` on the export's base path (port chosen by the server, read from its
    log); the process, the address and the model name."""
    import threading

    from tfemotion.export.signatures import find_export

    version = find_export(export)
    if version is None:
        raise SystemExit(f"--export {export}: no SavedModel there (BASE/NAME/VERSION or BASE/NAME)")
    base, name = version.parent.parent, version.parent.name
    command = [sys.executable, "-m", "tfemotion", "serve", "--base-path", str(base), "--name",
               name, "--port", "0", "--rest-port", "none", "--poll-interval", "3600"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    deadline = time.monotonic() + 300
    for line in server.stderr:  # the server logs its address once it serves
        found = re.search(r"gRPC on (\S+?),", line)
        if found:  # keep reading its log, so that a full pipe never blocks it
            threading.Thread(target=server.stderr.read, daemon=True).start()
            return server, found[1], name
        if time.monotonic() > deadline:
            break
    server.kill()
    raise RuntimeError(f"tfemotion serve did not start on {base}: exit {server.wait()}")


# Runs the timed calls from a process of its own that imports nothing but the standard library:
# a child's peak resident memory (ru_maxrss) counts what it shared with its parent when forked,
# so the parent must be smaller than what is measured (this benchmark holds TensorFlow).
_RUNNER = r"""
import json, os, subprocess, sys, time
commands, calls = json.load(sys.stdin)
results = {}
for name, command in commands.items():
    rows = []
    for call in range(calls + 1):  # the first, untimed: file caches
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        output, errors = process.stdout.read(), process.stderr.read()
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            sys.exit(f"{name} exited {code}: {errors.decode()[-2000:]}")
        if call:
            rows.append((wall, usage.ru_maxrss / 1024))
    results[name] = {"walls": [r[0] for r in rows], "peaks": [r[1] for r in rows],
                     "output": output.decode()}
print(json.dumps(results))
"""


def bench(python: Path, commands: dict[str, list[str]], calls: int) -> list[dict]:
    """Each command once untimed, then ``calls`` times: wall seconds and peak memory (MB).

    Raises:
        RuntimeError: a call failed.
    """
    import json

    result = subprocess.run([str(python), "-I", "-c", _RUNNER], capture_output=True, text=True,
                            input=json.dumps([commands, calls]))
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    rows = []
    for name, measured in json.loads(result.stdout).items():
        walls, peaks = measured["walls"], measured["peaks"]
        rows.append({"name": name, "wall_p50": statistics.median(walls), "wall_max": max(walls),
                     "peak_p50": statistics.median(peaks), "peak_max": max(peaks),
                     "output": measured["output"]})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", type=Path, required=True,
                        help="an export: BASE/NAME/VERSION or BASE/NAME (its highest version)")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per command")
    parser.add_argument("--keep-venv", type=Path,
                        help="create the client's environment here and keep it (default: a "
                             "temporary folder, removed)")
    args = parser.parse_args(argv)

    import tfemotion  # noqa: F401  (Keras 2 before machine() loads TensorFlow)
    from compute_limit import machine

    print(f"[machine] {machine()}", flush=True)
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep_venv or Path(temporary) / "venv"
        venv = make_venv(folder)
        print(f"\n[venv] python -m venv + pip install ./client: {venv['seconds']:.1f} s; pip list:")
        print("  " + "\n  ".join(venv["packages"]))
        print(f"  TensorFlow, Keras, PyTorch, NumPy, JAX installed: "
              f"{', '.join(venv['heavy']) or 'none'}")
        print(f"  lib/: {venv['lib_mb']:.1f} MB (goal <= {GOALS['lib_mb']:.0f} MB)")
        server, address, name = start_server(args.export)
        try:
            query = [str(folder / "bin" / "tfemotion-query"), "--server", address, "--name",
                     name, TEXT]
            tfemotion_query = [str(Path(sys.executable).parent / "tfemotion"), "query",
                               "--server", address, "--name", name, TEXT]
            rows = bench(folder / "bin" / "python",
                         {"tfemotion-query (client venv)": query,
                          "tfemotion query (tfemotion venv)": tfemotion_query}, args.calls)
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(f"\n[calls] {args.calls} calls each, one text, server {address}; answer:\n  "
          + rows[0]["output"].strip().replace("\n", "\n  "))
    print(f"  {'command':<34}{'wall p50':>10}{'wall max':>10}{'peak p50':>11}{'peak max':>11}")
    for row in rows:
        print(f"  {row['name']:<34}{row['wall_p50']:>9.3f}s{row['wall_max']:>9.3f}s"
              f"{row['peak_p50']:>8.1f} MB{row['peak_max']:>8.1f} MB")
    light = rows[0]
    met = {"wall p50 <= 0.5 s": light["wall_p50"] <= GOALS["wall_p50"],
           "peak <= 100 MB": light["peak_max"] <= GOALS["peak_mb"],
           "lib/ <= 120 MB": venv["lib_mb"] <= GOALS["lib_mb"],
           "no TensorFlow/Keras/PyTorch": not venv["heavy"]}
    print("\n[goals] " + ", ".join(f"{goal}: {'yes' if ok else 'NO'}" for goal, ok in met.items()))
    print(f"[load] average after: {os.getloadavg()[0]:.2f}")
    return {"venv": venv, "rows": rows, "goals": met}


if __name__ == "__main__":
    main()
