"""The command line as a user runs it: subprocesses, exit codes, what stdout and stderr hold."""

from __future__ import annotations

import json
import subprocess
import sys
from tfemotion.cli import main


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "tfemotion", *args], capture_output=True,
                          text=True, timeout=300, **kwargs)


def test_help_answers_without_heavy_imports():
    result = run_cli("--help")
    assert result.returncode == 0 and "baseline" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, tfemotion.cli; tfemotion.cli.build_parser();"
         "print(sorted(m for m in ('tensorflow','transformers','datasets') if m in sys.modules))"],
        capture_output=True, text=True)
    assert probe.stdout.strip() == "[]"


def test_argument_errors_exit_2_with_usage():
    result = run_cli("baseline", "--data", "x", "--out", "o", "--pooling", "max")
    assert result.returncode == 2
    assert "invalid choice: 'max'" in result.stderr


def test_explore_json_is_the_only_thing_on_stdout(emotion_dir, tmp_path):
    result = run_cli("explore", "--data", str(emotion_dir), "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["splits"]["train"]["rows"] == 240


def test_missing_data_exits_1_naming_the_file(tmp_path, capsys):
    (tmp_path / "train.txt").write_text("no separator\n")
    assert main(["explore", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "train.txt:1: no ';' separator" in capsys.readouterr().err


def test_explore_end_to_end(emotion_dir, tiny_bert_dir, tmp_path):
    out = tmp_path / "explore"
    result = run_cli("explore", "--data", str(emotion_dir), "--out", str(out), "--model",
                     str(tiny_bert_dir))
    assert result.returncode == 0, result.stderr
    assert "labels: sadness, joy, love, anger, fear, surprise" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["splits"]) == {"train", "validation", "test"}
    assert {"tokens_mean", "tokens_max", "share_longer_than_max"} <= set(summary["splits"]["train"])
    assert (out / "class_distribution.png").read_bytes()[:4] == b"\x89PNG"


def test_predict_without_texts_file_or_piped_input_explains_what_it_needs(tmp_path):
    import os

    leader, terminal = os.openpty()  # standard input is a terminal: nothing is piped in
    try:
        result = subprocess.run([sys.executable, "-m", "tfemotion", "predict", "--model",
                                 str(tmp_path)], capture_output=True, text=True, timeout=60,
                                stdin=terminal)
    finally:
        os.close(leader)
        os.close(terminal)
    assert result.returncode == 2
    assert "give TEXT arguments, --file PATH, or texts on standard input" in result.stderr


def test_predict_reports_a_model_folder_that_holds_no_model(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tfemotion", "predict", "--model",
                             str(tmp_path), "hello"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "holds no saved model" in result.stderr and "Traceback" not in result.stderr


def test_query_reports_an_unreachable_server_without_a_traceback():
    result = subprocess.run([sys.executable, "-m", "tfemotion", "query", "--server",
                             "127.0.0.1:9", "--retries", "0", "--timeout", "2", "hello"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr and "Traceback" not in result.stderr
