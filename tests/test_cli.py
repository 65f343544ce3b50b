"""The command line: fast help, argument errors, non-zero exits, explore end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tfemotion.cli import build_parser, main


def run_cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "tfemotion", *args], capture_output=True,
                          text=True, timeout=300, **kwargs)


def test_help_answers_fast_without_heavy_imports():
    start = time.monotonic()
    result = run_cli("--help")
    assert result.returncode == 0 and "baseline" in result.stdout
    assert time.monotonic() - start < 3  # "well under a second" of our own, plus interpreter start
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, tfemotion.cli; tfemotion.cli.build_parser();"
         "print(sorted(m for m in ('tensorflow','transformers','datasets') if m in sys.modules))"],
        capture_output=True, text=True)
    assert probe.stdout.strip() == "[]"


def test_argument_errors_exit_2_with_usage():
    result = run_cli("baseline", "--data", "x", "--out", "o", "--pooling", "max")
    assert result.returncode == 2
    assert "invalid choice: 'max'" in result.stderr


def test_flags_come_from_config_defaults():
    args = build_parser().parse_args(["train", "--out", "o", "--lr", "5e-5", "--no-resume"])
    assert args.learning_rate == 5e-5 and args.resume is False
    assert not hasattr(args, "epochs")  # omitted flags leave the dataclass default in force


def test_bad_config_value_exits_1_naming_the_field(capsys):
    assert main(["baseline", "--data", "x", "--out", "o", "--batch-size", "0"]) == 1
    assert "Received: batch_size=0" in capsys.readouterr().err


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
