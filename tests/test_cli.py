"""The command line: fast help, argument errors, non-zero exits, explore end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tfemotion import config as cfg
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


def test_explore_json_is_the_only_thing_on_stdout(emotion_dir, tmp_path):
    result = run_cli("explore", "--data", str(emotion_dir), "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["splits"]["train"]["rows"] == 120


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


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def _subcommand_names() -> list[str]:
    return sorted(_subcommands())


def test_the_help_test_covers_every_subcommand():
    assert _subcommand_names() == sorted(["explore", "baseline", "train", "evaluate", "predict",
                                          "export", "serve", "query", "run"])


@pytest.mark.parametrize("command", _subcommand_names())
def test_every_subcommand_help_renders_and_ends_with_examples(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: tfemotion {command}")
    examples = text[text.index("\nexamples:\n"):].splitlines()[2:]
    assert 1 <= len(examples) <= 3 and all(f"tfemotion {command}" in line or line.startswith(
        "      ") or "| tfemotion" in line for line in examples)
    assert "--verbose" in text


def test_run_gives_each_stage_its_own_flags():
    parser = build_parser()
    args = parser.parse_args(["run", "--out", "o", "--batch-size", "16", "--max-length", "48"])
    from tfemotion.cli import config_from_args

    assert config_from_args(cfg.FinetuneConfig, args).batch_size == 16
    assert config_from_args(cfg.FinetuneConfig, args).max_length == 48
    features = config_from_args(cfg.FeatureConfig, args, prefix="baseline")
    assert features.batch_size == cfg.FeatureConfig().batch_size  # untouched
    assert features.max_length is None
    assert config_from_args(cfg.ExportConfig, args, prefix="export").max_length is None
    args = parser.parse_args(["run", "--out", "o", "--baseline-batch-size", "32",
                              "--baseline-max-length", "24", "--export-max-length", "40",
                              "--no-export-verify"])
    assert config_from_args(cfg.FeatureConfig, args, prefix="baseline").batch_size == 32
    assert config_from_args(cfg.FeatureConfig, args, prefix="baseline").max_length == 24
    export = config_from_args(cfg.ExportConfig, args, prefix="export")
    assert export.max_length == 40 and export.verify is False
    assert config_from_args(cfg.FinetuneConfig, args).batch_size == cfg.FinetuneConfig().batch_size


def test_run_flags_each_set_one_field_of_one_stage_but_model_and_data():
    """Every settings flag of `run` lands in exactly one config field; only the checkpoint and
    the data are shared, and their help says so."""
    import dataclasses

    parser = _subcommands()["run"]
    stages = {"": (cfg.DataConfig, cfg.FinetuneConfig), "baseline": (cfg.FeatureConfig,),
              "export": (cfg.ExportConfig,)}
    owners: dict[str, list[str]] = {}
    for prefix, classes in stages.items():
        for config_class in classes:
            for field in dataclasses.fields(config_class):
                dest = f"{prefix}_{field.name}" if prefix else field.name
                owners.setdefault(dest, []).append(config_class.__name__)
    settings = [a for a in parser._actions if a.dest not in ("help", "verbose", "json", "out",
                                                             "stages")]
    for action in settings:
        assert owners.get(action.dest) is not None, action.dest
        assert len(owners[action.dest]) == 1, (action.dest, owners[action.dest])
    model = next(a for a in settings if a.dest == "model")
    assert "every stage" in model.help
    assert not any(a.dest in ("baseline_model", "export_base_path") for a in settings)


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


def test_help_never_shows_a_default_of_none_and_prefixed_flags_name_their_siblings(capsys):
    for command in ("baseline", "train", "export", "serve", "query", "run"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "(default: None)" not in text, command
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "grow up to --baseline-batch-size" in text
    assert build_parser().parse_args(["run", "--out", "o", "--baseline-max-tokens",
                                      "none"]).baseline_max_tokens is None

