"""The main job (`tfemotion run`, what `make run` calls) end to end on a tiny model, and the
commands a user runs on its output folder next (evaluate, export, predict)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tfemotion.pipeline import stage_dirs

# What a user cannot act on, and the default output must not show (tfemotion.logs).
NOISE = ("cuInit", "oneDNN", "TensorFlow and JAX classes are deprecated",
         "Some layers of", "were not used when initializing", "absl::InitializeLog")


def tfemotion(*args: str, stdin: str | None = None, timeout: int = 600, env=None):
    return subprocess.run([sys.executable, "-m", "tfemotion", *args], capture_output=True,
                          text=True, timeout=timeout, input=stdin, env=env)


@pytest.fixture(scope="module")
def pipeline_out(tmp_path_factory, emotion_dir, tiny_bert_dir):
    out = tmp_path_factory.mktemp("pipeline") / "out"
    result = tfemotion("run", "--data", str(emotion_dir), "--model", str(tiny_bert_dir),
                       "--out", str(out), "--epochs", "1", "--batch-size", "16",
                       "--recipe", "default", "--no-export-verify")
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


def test_run_cli_runs_every_stage_and_writes_each_stage_folder(pipeline_out):
    out, result = pipeline_out
    assert "fine-tuned (best epoch 1)" in result.stdout
    dirs = stage_dirs(out)
    summary = json.loads((dirs["explore"] / "summary.json").read_text())
    assert summary["splits"]["train"]["rows"] == 240
    baseline = json.loads((dirs["baseline"] / "metrics.json").read_text())
    assert set(baseline) == {"logistic_regression", "dummy", "features"}
    metrics = json.loads((dirs["train"] / "metrics.json").read_text())
    assert metrics["best_epoch"] == 1 and len(metrics["epochs"]) == 1
    assert (dirs["train"] / "model" / "config.json").exists()
    assert (dirs["train"] / "errors_highest_loss.csv").exists()
    versions = [p.name for p in (dirs["export"] / "emotion").iterdir()]
    assert versions == ["1"]
    assert (dirs["export"] / "emotion" / "1" / "saved_model.pb").exists()


def test_run_cli_says_which_learning_rate_it_chose_and_why(pipeline_out):
    out, result = pipeline_out
    record = json.loads((out / "run" / "config.json").read_text())
    reason = record["schedule"]["reason"]
    assert reason.startswith("learning rate 0.0005 chosen for the encoder's hidden size 32")
    assert reason in result.stdout  # the closing summary
    assert "Fine-tuning" in result.stderr and reason in result.stderr  # said when training starts


def test_run_cli_output_holds_no_start_up_noise(pipeline_out):
    _, result = pipeline_out
    for noise in NOISE:
        assert noise not in result.stderr + result.stdout, noise
    assert "== train" in result.stderr  # stage progress is on standard error, results on stdout
    assert "== train" not in result.stdout


def test_verbose_brings_the_start_up_log_back(pipeline_out):
    out, _ = pipeline_out
    # TensorFlow's start-up lines depend on the machine and the environment (cuInit fails only
    # in a CUDA build without a GPU; TF_ENABLE_ONEDNN_OPTS=0 silences the oneDNN line): with
    # oneDNN turned on by request, it announces itself on any x86 CPU, and that line is noise.
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as in a user's shell
    quiet = tfemotion("predict", "--model", str(out), "i feel happy", env=env)
    loud = tfemotion("predict", "--model", str(out), "--verbose", "i feel happy", env=env)
    assert quiet.returncode == loud.returncode == 0, quiet.stderr + loud.stderr
    assert quiet.stdout == loud.stdout
    assert "TensorFlow and JAX classes are deprecated" in loud.stderr
    assert "TensorFlow and JAX classes are deprecated" not in quiet.stderr
    native = re.compile(r"^[IWE]\d{4} [\d:.]+\s+\d+ \S+\] ", re.M)  # TensorFlow's C++ log
    assert "oneDNN custom operations are on" in loud.stderr
    assert native.search(loud.stderr) and not native.search(quiet.stderr)


def test_evaluate_and_export_accept_the_out_folder_and_print_json(pipeline_out, tmp_path):
    out, _ = pipeline_out
    evaluated = tfemotion("evaluate", "--run", str(out), "--split", "test", "--json")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    result = json.loads(evaluated.stdout)
    trained = json.loads((out / "run" / "metrics.json").read_text())
    assert result["f1_weighted"] == pytest.approx(trained["test"]["f1_weighted"], abs=1e-6)
    assert (out / "run" / "evaluation" / "test" / "metrics.json").is_file()

    exported = tfemotion("export", "--run", str(out), "--base-path", str(tmp_path / "models"),
                         "--no-verify", "--json")
    assert exported.returncode == 0, exported.stderr[-3000:]
    report = json.loads(exported.stdout)
    assert report["version"] == 1 and report["max_length"] == json.loads(
        (out / "run" / "config.json").read_text())["max_length"]


def test_predict_streams_a_file_from_the_export_without_transformers(pipeline_out, tmp_path):
    out, _ = pipeline_out
    texts = ["i feel so happy today", "", "sad and gloomy", "scared 😀"] * 50
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    probe = ("import runpy, sys; sys.argv = ['tfemotion'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('tfemotion', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print('transformers' in sys.modules, file=sys.stderr)")
    result = subprocess.run(
        [sys.executable, "-c", probe, "predict", "--model", str(out / "serving" / "emotion"),
         "--file", str(path), "--json", "--batch-size", "16"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.strip().endswith("False")  # the export needs TensorFlow only
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == texts  # one result per line, in order
    keras = tfemotion("predict", "--model", str(out / "run"), "--json",
                      stdin="\n".join(texts[:4]))  # the run folder itself this time
    assert keras.returncode == 0, keras.stderr[-3000:]
    for served, direct in zip(lines, (json.loads(l) for l in keras.stdout.splitlines())):
        assert served["label"] == direct["label"]
        for name, score in direct["scores"].items():
            assert served["scores"][name] == pytest.approx(score, abs=1e-5)


def test_predict_with_empty_input_is_an_error_not_a_silent_success(pipeline_out):
    out, _ = pipeline_out
    result = tfemotion("predict", "--model", str(out), stdin="")
    assert result.returncode == 1 and result.stdout == ""
    assert "no texts to classify: the input held no lines" in result.stderr


def test_a_model_written_as_a_path_that_does_not_exist_is_not_taken_for_a_hub_id(tmp_path):
    result = tfemotion("predict", "--model", str(tmp_path / "serving" / "emotion" / "7"), "hi")
    assert result.returncode == 1
    assert "is written as a path, but there is no such file or folder" in result.stderr
    assert "hub" not in result.stderr and "Traceback" not in result.stderr
