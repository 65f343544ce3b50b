"""The command line's parser: flags from the configs, help, argument errors (in process)."""

from __future__ import annotations

import pytest
from tfemotion import config as cfg
from tfemotion.cli import build_parser, main


def test_flags_come_from_config_defaults():
    args = build_parser().parse_args(["train", "--out", "o", "--lr", "5e-5", "--no-resume"])
    assert args.learning_rate == 5e-5 and args.resume is False
    assert not hasattr(args, "epochs")  # omitted flags leave the dataclass default in force


def test_bad_config_value_exits_1_naming_the_field(capsys):
    assert main(["baseline", "--data", "x", "--out", "o", "--batch-size", "0"]) == 1
    assert "Received: batch_size=0" in capsys.readouterr().err


def _subcommands():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


def _subcommand_names() -> list[str]:
    return sorted(_subcommands())


def test_the_help_test_covers_every_subcommand():
    assert _subcommand_names() == sorted(["explore", "baseline", "train", "evaluate", "predict",
                                          "export", "serve", "query", "score", "run",
                                          "calibrate", "audit"])


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
              "export": (cfg.ExportConfig,), "audit": (cfg.AuditConfig,)}
    owners: dict[str, list[str]] = {}
    for prefix, classes in stages.items():
        for config_class in classes:
            for field in dataclasses.fields(config_class):
                dest = f"{prefix}_{field.name}" if prefix else field.name
                owners.setdefault(dest, []).append(config_class.__name__)
    settings = [a for a in parser._actions if a.dest not in ("help", "verbose", "json", "out",
                                                             "stages", "audit")]
    for action in settings:
        assert owners.get(action.dest) is not None, action.dest
        assert len(owners[action.dest]) == 1, (action.dest, owners[action.dest])
    model = next(a for a in settings if a.dest == "model")
    assert "every stage" in model.help
    assert not any(a.dest in ("baseline_model", "export_base_path") for a in settings)


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


def test_score_takes_beam_options_after_a_double_dash():
    args = build_parser().parse_args(
        ["score", "--model", "m", "--input", "a.txt", "b*.jsonl", "--output", "o/s",
         "--max-batch-size", "32", "--", "--runner=DataflowRunner", "--project=p"])
    assert args.input == ["a.txt", "b*.jsonl"] and args.max_batch_size == 32
    assert args.beam_args == ["--runner=DataflowRunner", "--project=p"]


def test_train_takes_the_contrastive_recipe_and_its_settings_as_flags():
    from tfemotion.cli import config_from_args

    args = build_parser().parse_args([
        "train", "--out", "o", "--recipe", "contrastive", "--head", "dense", "--max-pairs", "96",
        "--label-template", "none", "--label-prior", "0", "--holdout-share", "0.2"])
    config = config_from_args(cfg.FinetuneConfig, args)
    assert (config.recipe, config.head, config.max_pairs, config.label_template,
            config.label_prior, config.holdout_share) == ("contrastive", "dense", 96, None,
                                                          0.0, 0.2)
    assert cfg.FinetuneConfig().recipe == "auto"


def test_calibration_is_on_unless_no_calibrate_and_calibrate_takes_the_run():
    from tfemotion.cli import config_from_args

    parser = build_parser()
    for command in ("train", "run"):
        args = parser.parse_args([command, "--out", "o"])
        assert config_from_args(cfg.FinetuneConfig, args).calibrate is True
        args = parser.parse_args([command, "--out", "o", "--no-calibrate"])
        assert config_from_args(cfg.FinetuneConfig, args).calibrate is False
    assert parser.parse_args(["calibrate", "runs/emotion"]).run == "runs/emotion"
    assert parser.parse_args(["calibrate", "--run", "r"]).run_option == "r"


def test_calibrate_without_a_run_says_what_to_give(capsys):
    with pytest.raises(SystemExit):
        main(["calibrate"])
    assert "give the run folder" in capsys.readouterr().err


def test_audit_takes_the_data_and_training_flags_and_its_own(monkeypatch, capsys):
    """`tfemotion audit` builds the three configs from its flags and calls the library; `run
    --audit` adds the audit stage with its prefixed flags."""
    import tfemotion.audit

    seen = {}

    def fake_audit(data, finetune, audit, out, **kwargs):
        seen.update(data=data, finetune=finetune, audit=audit, out=out)
        return {"texts": 10, "flagged": 1, "method": "m", "files": {"md": "a.md", "plot": "a.png"},
                "per_label": {"a": {"texts": 5, "flagged": 1, "share": 0.2}},
                "cost": {"trainings": 3, "trained_now": 3, "seconds": 9.0, "recipe": "r"}}

    monkeypatch.setattr(tfemotion.audit, "audit_labels", fake_audit)
    assert main(["audit", "--data", "d", "--model", "m", "--out", "o", "--folds", "3",
                 "--epochs", "2", "--filter-by", "both"]) == 0
    assert (seen["audit"].folds, seen["audit"].filter_by) == (3, "both")
    assert (seen["finetune"].model, seen["finetune"].epochs, seen["out"]) == ("m", 2, "o")
    assert seen["data"].source == "d"
    out = capsys.readouterr().out
    assert out.startswith("1 of the 10 training texts flagged") and "3 trainings" in out
    with pytest.raises(SystemExit):
        build_parser().parse_args(["audit", "--data", "d", "--out", "o", "--resume"])
    args = build_parser().parse_args(["run", "--out", "o", "--audit", "--audit-folds", "4"])
    from tfemotion.cli import config_from_args

    assert args.audit and config_from_args(cfg.AuditConfig, args, prefix="audit").folds == 4
    assert build_parser().parse_args(["run", "--out", "o"]).audit is False
