"""The ``tfemotion`` command line: one subcommand per stage, flags built from ``config.py``.

Nothing here computes anything: each subcommand turns its flags into config dataclasses,
calls the stage's public function and prints what it returned (results on standard output,
progress and warnings on standard error). Heavy libraries (TensorFlow, transformers,
datasets) are imported inside the subcommands, so ``tfemotion --help`` and argument errors
answer at once. Unless ``--verbose`` is given, start-up noise a user cannot act on is dropped
(see ``tfemotion.logs``).

In ``tfemotion run`` each flag sets one stage's setting: flags without a prefix are the
fine-tuning ones (the main stage), ``--baseline-*`` the feature baseline's and ``--export-*``
the export's. Only ``--model`` (the checkpoint) and the data flags serve every stage.

Example:
    >>> build_parser().parse_args(["baseline", "--data", "d", "--out", "o", "--pooling", "mean"]).pooling
    'mean'
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import textwrap
from typing import Any, Callable, Iterable, Optional, Sequence

from tfemotion import __version__
from tfemotion import config as cfg
from tfemotion.pipeline import OPTIONAL_STAGES, STAGES

# region Flags from dataclasses


def _flag_type(annotation: str) -> tuple[Callable[[str], Any], bool]:
    """(converter, is_list) for a dataclass field's annotation string.

    An optional number also takes ``none`` (the field's "no limit" / "chosen for you" value).

    Example:
        >>> convert, _ = _flag_type("Optional[int]"); convert("none"), convert("8")
        (None, 8)
    """
    if "tuple" in annotation:
        return (int if "tuple[int" in annotation else str), True
    optional = annotation.startswith("Optional[")
    for name, converter in (("bool", bool), ("int", int), ("float", float)):
        if annotation.replace("Optional[", "").rstrip("]") == name:
            if optional and converter is not bool:
                return _or_none(converter), False
            return converter, False
    return str, False


def _or_none(converter: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(value: str) -> Any:
        return None if value.strip().lower() == "none" else converter(value)

    convert.__name__ = converter.__name__  # argparse names the type in its error messages
    return convert


def add_config_flags(parser: argparse.ArgumentParser, config_class: type,
                     only: Optional[Sequence[str]] = None, skip: Sequence[str] = (),
                     prefix: str = "", help_texts: Optional[dict[str, str]] = None) -> None:
    """Add one flag per field of ``config_class`` (help, choices and aliases from its metadata).

    Flags default to ``argparse.SUPPRESS``: an omitted flag leaves the dataclass default in force,
    so defaults are stated once, in ``config.py``. With ``prefix``, each flag is
    ``--PREFIX-NAME`` (no aliases) and its value lands in ``PREFIX_NAME``, so two stages' fields
    of the same name never share a flag.

    Example:
        >>> p = argparse.ArgumentParser(); add_config_flags(p, cfg.FeatureConfig, only=["pooling"])
        >>> p.parse_args([])
        Namespace()
        >>> add_config_flags(p, cfg.FeatureConfig, only=["batch_size"], prefix="baseline")
        >>> p.parse_args(["--baseline-batch-size", "8"])
        Namespace(baseline_batch_size=8)
    """
    existing = {action.dest for action in parser._actions}
    for field in dataclasses.fields(config_class):
        dest = f"{prefix}_{field.name}" if prefix else field.name
        if (only is not None and field.name not in only) or field.name in skip or dest in existing:
            continue
        meta = field.metadata
        name = field.name.replace("_", "-")
        if prefix:
            flags: tuple[str, ...] = (f"--{prefix}-{name}",)
        else:
            flags = meta.get("flags") or (f"--{name}",)
        converter, is_list = _flag_type(str(field.type))
        default = field.default if field.default is not dataclasses.MISSING else None
        text = (help_texts or {}).get(field.name, meta.get("help", ""))
        if prefix:  # the help names sibling flags: give them their prefixed names
            for sibling in dataclasses.fields(config_class):
                plain = "--" + sibling.name.replace("_", "-")
                text = re.sub(re.escape(plain) + r"\b", f"--{prefix}-{plain[2:]}", text)
        if default is not None:  # None: the help says what happens then
            text = f"{text} (default: {default})"
        help_text = text.replace("%", "%%")  # argparse formats help strings with %
        kwargs: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": help_text}
        if converter is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=converter, metavar=dest.upper())
            if meta.get("choices"):
                kwargs.update(choices=meta["choices"], metavar=None)
            if is_list:
                kwargs["nargs"] = "+"
        parser.add_argument(*flags, **kwargs)


def config_from_args(config_class: type, args: argparse.Namespace, prefix: str = "",
                     **overrides: Any) -> Any:
    """Build ``config_class`` from the parsed flags that name its fields (``PREFIX_NAME``).

    Example:
        >>> config_from_args(cfg.FeatureConfig, argparse.Namespace(pooling="mean")).pooling
        'mean'
        >>> args = argparse.Namespace(batch_size=16, baseline_batch_size=32)
        >>> config_from_args(cfg.FeatureConfig, args, prefix="baseline").batch_size
        32
    """
    values = {}
    for field in dataclasses.fields(config_class):
        dest = f"{prefix}_{field.name}" if prefix else field.name
        if hasattr(args, dest):
            values[field.name] = getattr(args, dest)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return config_class(**values)


# endregion
# region Output


def _to_stderr(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``function`` with its prints (Keras progress bars) on standard error.

    Standard output then carries only the command's result, which ``--json`` makes parseable.
    """
    with contextlib.redirect_stdout(sys.stderr):
        return function(*args, **kwargs)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _print_metrics(title: str, metrics: dict[str, dict[str, float]], task: Any,
                   first: bool = False) -> None:
    print(title if first else f"\n{title}")
    keys = task.headline_metrics
    print(f"  {'split':<12}" + "".join(f"{key:>{len(key) + 2}}" for key in keys))
    for split, values in metrics.items():
        print(f"  {split:<12}" + "".join(f"{values[key]:>{len(key) + 2}.4f}" for key in keys))
        if "at_threshold_0.5" in values:
            at_half = values["at_threshold_0.5"]
            print(f"  {'  at 0.5':<12}" + "".join(f"{at_half[key]:>{len(key) + 2}.4f}"
                                                  for key in keys))


def _print_training(metrics: dict[str, Any], task: Any) -> None:
    recipe = metrics.get("recipe") or {}
    if recipe.get("name") == "contrastive":
        title = (f"contrastive recipe ({recipe['head'].replace('_', ' ')} head, "
                 f"{recipe['head_note']})")
    else:
        title = f"fine-tuned (best epoch {metrics['best_epoch']})"
    _print_metrics(title, {s: metrics[s] for s in ("validation", "test") if s in metrics}, task)
    if metrics.get("thresholds"):
        where = ("out-of-fold predictions" if recipe.get("name") == "contrastive"
                 and "validation" not in metrics else "validation")
        print(f"decision thresholds tuned on {where}: " + ", ".join(
            f"{name} {value:.2f}" for name, value in metrics["thresholds"].items()))
    _print_calibration(metrics.get("calibration"))
    if recipe:
        print(f"\n{recipe['reason']}\nvalidation: {recipe['validation']}")
    print(f"\n{metrics['schedule']['reason']}")
    print(f"trained in {metrics['train_seconds']:.0f} s "
          f"({metrics['train_examples_per_second']:.1f} "
          f"{'pairs' if recipe.get('name') == 'contrastive' else 'examples'}/s)")


def _print_calibration(calibration: Optional[dict[str, Any]]) -> None:
    """One line on the temperatures and where they were fitted, one per split on its figures."""
    if not calibration:
        return
    temperatures = calibration.get("temperatures")
    if temperatures is None:
        print(f"calibration: {calibration.get('fitted_on') or 'none (T = 1)'}")
    else:
        shown = (", ".join(f"{k} {v:.2f}" for k, v in temperatures.items())
                 if isinstance(temperatures, dict) else f"{temperatures:.3f}")
        seconds = calibration.get("fit_seconds")
        print(f"calibration: T = {shown}, {calibration.get('fitted_on')}"
              + (f" ({seconds:.2f} s)" if seconds is not None else ""))
    for split in ("validation", "test"):
        figures = calibration.get(split)
        if figures and "after" in figures:
            before, after = figures["before"], figures["after"]
            print(f"  {split:<12}ECE {before['ece']:.2%} -> {after['ece']:.2%}, NLL "
                  f"{before['nll']:.4f} -> {after['nll']:.4f}, Brier {before['brier']:.4f} -> "
                  f"{after['brier']:.4f}")
        elif figures:
            print(f"  {split:<12}ECE {figures['before']['ece']:.2%}, NLL "
                  f"{figures['before']['nll']:.4f}, Brier {figures['before']['brier']:.4f}")


def _input_texts(args: argparse.Namespace, parser: argparse.ArgumentParser
                 ) -> tuple[Iterable[str], Optional[int]]:
    """The texts of ``predict``: arguments, ``--file`` or standard input; their count (``query``
    reads its own: ``tfemotion_client.cli.input_texts``)."""
    from tfemotion.data import read_texts

    if args.texts and args.file:
        parser.error("give TEXT arguments or --file, not both")
    if args.texts:
        return args.texts, len(args.texts)
    if args.file is None and sys.stdin.isatty():
        parser.error("give TEXT arguments, --file PATH, or texts on standard input (one per "
                     "line)")
    source = args.file or "-"
    if source == "-":
        return read_texts(source), None
    total = sum(1 for _ in read_texts(source))  # a missing or non-UTF-8 file fails here, early
    return read_texts(source), total


def _stream(results: Iterable[dict[str, Any]], total: Optional[int], as_json: bool,
            show_bar: bool) -> int:
    """Print results as they come.

    With ``show_bar`` (texts from a file or standard input) and the results going to a file or
    a pipe, a progress bar runs on standard error (when that is a terminal); results printed to
    the terminal are their own progress.
    """
    from tqdm import tqdm

    from tfemotion.logs import stderr_is_terminal
    from tfemotion.serving.client import format_prediction

    count = 0
    bar_wanted = show_bar and not sys.stdout.isatty() and stderr_is_terminal()
    with tqdm(total=total, unit="text", file=sys.stderr, disable=not bar_wanted,
              leave=False) as bar:
        for result in results:
            print(json.dumps(result, ensure_ascii=False) if as_json else format_prediction(result),
                  flush=True)
            count += 1
            bar.update(1)
    if count == 0:
        raise ValueError("no texts to classify: the input held no lines. Received: 0 texts")
    return count


# endregion
# region Subcommands


def cmd_explore(args: argparse.Namespace) -> int:
    """`tfemotion explore`: class balance and text lengths (tfemotion.data.exploration)."""
    from tfemotion.data.exploration import explore

    summary = _to_stderr(explore, config_from_args(cfg.DataConfig, args), args.out,
                         model=args.model, max_length=args.max_length)
    if args.json:
        _print_json(summary)
        return 0
    print(f"labels: {', '.join(summary['label_names'])}")
    for split, stats in summary["splits"].items():
        line = (f"  {split:<11} {stats['rows']:>7} rows, {stats['words_mean']:.1f} words/text "
                f"(max {stats['words_max']})")
        if "tokens_mean" in stats:
            line += (f", {stats['tokens_mean']:.1f} tokens/text (max {stats['tokens_max']}, "
                     f"{100 * stats['share_longer_than_max']:.2f}% truncated)")
        print(line)
    print(f"wrote {args.out}/summary.json, class_distribution.png, words_per_text.png")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    """`tfemotion baseline`: features + logistic regression (tfemotion.features.run_baseline)."""
    data_config = config_from_args(cfg.DataConfig, args)
    feature_config = config_from_args(cfg.FeatureConfig, args)
    from tfemotion.data import load_splits, task_of
    from tfemotion.features import run_baseline

    splits = _to_stderr(load_splits, data_config)
    task = task_of(splits)
    metrics = _to_stderr(run_baseline, splits, feature_config, args.out, task=task)
    if args.json:
        _print_json(metrics)
        return 0
    features = metrics["features"]
    print(f"features: {features['texts']} texts in {features['seconds']:.1f} s "
          f"({features['texts_per_second']:.1f} texts/s)")
    for model in ("logistic_regression", "dummy"):
        _print_metrics(model, metrics[model], task)
    plots = ("label_confusion.png" if task.multi_label else "confusion_matrix.png") + (
        ", umap.png" if feature_config.umap else "")
    print(f"\nwrote {args.out}/metrics.json, {plots}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """`tfemotion train`: fine-tuning (tfemotion.training.train)."""
    data_config = config_from_args(cfg.DataConfig, args)
    finetune_config = config_from_args(cfg.FinetuneConfig, args)
    from tfemotion.data import load_splits, task_of
    from tfemotion.training import train

    splits = _to_stderr(load_splits, data_config)
    task = task_of(splits)
    metrics = _to_stderr(train, splits, data_config, finetune_config, args.out, task=task)
    if args.json:
        _print_json(metrics)
        return 0
    _print_training(metrics, task)
    print(f"run folder: {args.out}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """`tfemotion audit`: likely label errors of the training split (tfemotion.audit)."""
    data_config = config_from_args(cfg.DataConfig, args)
    finetune_config = config_from_args(cfg.FinetuneConfig, args)
    audit_config = config_from_args(cfg.AuditConfig, args)
    from tfemotion.audit import audit_labels
    from tfemotion.audit.report import summary_lines

    summary = _to_stderr(audit_labels, data_config, finetune_config, audit_config, args.out,
                         verbose="auto", progress=lambda line: print(f"== {line}", flush=True))
    if args.json:
        _print_json(summary)
        return 0
    print("\n".join(summary_lines(summary)))
    print(f"review from the top: {summary['files']['md']} (heat map: {summary['files']['plot']})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """`tfemotion evaluate`: a run's metrics on a split (tfemotion.evaluation.evaluate_run)."""
    from tfemotion.evaluation import evaluate_run
    from tfemotion.runfolder import RunRecord, find_run

    result = _to_stderr(evaluate_run, args.run, args.split)
    if args.json:
        _print_json({k: v for k, v in result.items() if k != "report"})
        return 0
    task = RunRecord.load(find_run(args.run)).task
    _print_metrics(f"{args.run} ({args.split})", {args.split: result}, task, first=True)
    temperatures = result["calibration"]["temperatures"]
    if temperatures is not None:
        temperatures = (temperatures[0] if len(temperatures) == 1
                        else dict(zip(task.label_names, temperatures)))
    _print_calibration({"temperatures": temperatures, args.split: result["calibration"],
                        "fitted_on": "the run's"})
    print(f"\n{result['report']}")
    print(f"\nwrote {os.path.dirname(result['files']['metrics'])}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """`tfemotion calibrate`: fit a run's temperatures again (tfemotion.training.calibrate_run)."""
    from tfemotion.training.calibrate import calibrate_run

    run = args.run or args.run_option
    if not run:
        args.parser.error("give the run folder: tfemotion calibrate RUN")
    report = _to_stderr(calibrate_run, run)
    if args.json:
        _print_json(report)
        return 0
    previous = report["previous"]
    print(f"calibrated {report['run']} on {report['fitted_on']} in {report['seconds']:.2f} s")
    print("  temperatures: " + ", ".join(f"{t:.3f}" for t in report["temperatures"])
          + f" (before: {'T = 1' if previous is None else ', '.join(f'{t:.3f}' for t in previous)})")
    before, after = report["before"], report["after"]
    print(f"  on those texts: ECE {before['ece']:.2%} -> {after['ece']:.2%}, NLL "
          f"{before['nll']:.4f} -> {after['nll']:.4f}, Brier {before['brier']:.4f} -> "
          f"{after['brier']:.4f}")
    if report.get("thresholds"):
        print("  decision thresholds tuned again: " + ", ".join(f"{t:.2f}" for t in
                                                                report["thresholds"]))
    print("exports made before keep their own temperatures: export the run again; "
          "`tfemotion evaluate` writes the new figures")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """`tfemotion predict`: stream texts through a saved model or an export."""
    from tfemotion.prediction import load_predictor, plot_probabilities, predict_stream

    texts, total = _input_texts(args, args.parser)
    classify = _to_stderr(load_predictor, args.model)
    first: list[dict[str, Any]] = []

    def keep_first(stream: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
        for result in stream:
            if not first:
                first.append(result)
            yield result

    _stream(keep_first(predict_stream(classify, texts, batch_size=args.batch_size)), total,
            args.json, show_bar=not args.texts)
    if args.plot and first:
        plot_probabilities(first[0], args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """`tfemotion export`: a verified SavedModel (tfemotion.export.export_run)."""
    from tfemotion.export import export_run

    report = _to_stderr(export_run, args.run, config_from_args(cfg.ExportConfig, args))
    if args.json:
        _print_json(report)
        return 0
    check = report.get("verification")
    print(f"exported {report['path']} (version {report['version']}), signatures "
          f"{', '.join(report['signatures'])}")
    if check:
        print(f"verified in a fresh process on {check['validation_texts']} validation and "
              f"{check['stress_texts']} stress texts: {check['token_id_mismatches']} token-id "
              f"mismatches, largest probability difference "
              f"{max(check['max_abs_diff'].values()):.1e}")
    print(f"serve it: tfemotion serve --base-path {report['base_path']}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """`tfemotion serve`: the development server (tfemotion.serving.serve)."""
    from tfemotion.serving.server import serve

    serve(args.base_path, config_from_args(cfg.ServingConfig, args))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    """`tfemotion query`: the light client's command (tfemotion_client.cli.run, as
    `tfemotion-query`), with the settings of cfg.ServingConfig."""
    from tfemotion_client.cli import run

    config = config_from_args(cfg.ServingConfig, args)
    for name in ("name", "timeout", "retries", "retry_backoff"):
        setattr(args, name, getattr(config, name))
    return run(args, args.parser, progress=_progress_bar)


def _progress_bar(total: Optional[int]) -> Any:
    """A tqdm bar on standard error, shown when it reaches a terminal."""
    from tqdm import tqdm

    from tfemotion.logs import stderr_is_terminal

    return tqdm(total=total, unit="text", file=sys.stderr, disable=not stderr_is_terminal(),
                leave=False)


def cmd_score(args: argparse.Namespace) -> int:
    """`tfemotion score`: bulk scoring on Apache Beam (tfemotion.scoring.score)."""
    try:
        from tfemotion.scoring import score
    except ImportError as error:
        raise SystemExit(f"tfemotion score needs Apache Beam: pip install \"tfemotion[beam]\" "
                         f"({error})") from None
    from tfemotion.logs import stderr_is_terminal

    report = score(args.model, args.input, args.output, config_from_args(cfg.ScoringConfig, args),
                   beam_args=args.beam_args, progress=stderr_is_terminal())
    if args.json:
        _print_json(report.to_dict())
        return 0
    print(f"read {report.read:,} records: {report.scored:,} scored, {report.dead_lettered:,} "
          f"dead-lettered, in {report.seconds:,.1f} s ({report.runner} runner)")
    print(f"scores:       {report.scores}\ndead letters: {report.dead_letters}\n"
          f"counts:       {report.counts}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: explore -> baseline -> train -> evaluate -> export."""
    finetune_config = config_from_args(cfg.FinetuneConfig, args)
    data_config = config_from_args(cfg.DataConfig, args)
    feature_config = config_from_args(cfg.FeatureConfig, args, prefix="baseline",
                                      model=finetune_config.model)
    export_config = config_from_args(cfg.ExportConfig, args, prefix="export")
    audit_config = config_from_args(cfg.AuditConfig, args, prefix="audit")
    stages = [*args.stages, *(["audit"] if args.audit and "audit" not in args.stages else [])]
    from tfemotion.pipeline import run_all

    results = _to_stderr(run_all, data_config, feature_config, finetune_config, export_config,
                         args.out, stages=stages,
                         progress=lambda message: print(f"\n== {message}", flush=True),
                         audit_config=audit_config)
    task = results["task"]
    if args.json:
        _print_json({**results, "task": task.to_dict()})
        return 0
    if "baseline" in results:
        _print_metrics("baseline: logistic regression on the encoder's features",
                       results["baseline"]["logistic_regression"], task)
    if "train" in results:
        _print_training(results["train"], task)
    if "export" in results:
        print(f"\nexported {results['export']['path']} (version {results['export']['version']})"
              f"; serve it: tfemotion serve --base-path {results['export']['base_path']}")
    if "audit" in results:
        from tfemotion.audit.report import summary_lines

        print("\nlabel audit\n  " + "\n  ".join(summary_lines(results["audit"])))
    seconds = results["seconds"]
    print(f"\nall outputs in {args.out}; took {seconds['total']:.0f} s ("
          + ", ".join(f"{stage} {seconds[stage]:.0f} s" for stage in stages) + ")")
    return 0


# endregion
# region Parser

EXAMPLES = {
    "explore": """examples:
  tfemotion explore --data data/emotion --out runs/explore
  tfemotion explore --data dair-ai/emotion --model distilbert-base-uncased --out runs/explore""",
    "baseline": """examples:
  tfemotion baseline --data dair-ai/emotion --model distilbert-base-uncased --out runs/baseline
  tfemotion baseline --data data/ --model path/to/checkpoint --out runs/b --pooling mean --umap""",
    "train": """examples:
  tfemotion train --data dair-ai/emotion --model distilbert-base-uncased --out runs/emotion
  tfemotion train --data data/ --model path/to/checkpoint --out runs/mine --epochs 3 --lr 1e-4
  tfemotion train --data few/ --model path/to/minilm --out runs/few --recipe contrastive""",
    "audit": """examples:
  tfemotion audit --data data/emotion --model path/to/minilm --out runs/emotion --folds 5
  tfemotion audit --data train.csv --model path/to/checkpoint --out runs/mine --epochs 2
  tfemotion audit --data data/emotion --model path/to/minilm --out runs/emotion  # resumes""",
    "evaluate": """examples:
  tfemotion evaluate --run runs/emotion --split test
  tfemotion evaluate --run runs/emotion --json   # the OUT folder of `tfemotion run` works too""",
    "calibrate": """examples:
  tfemotion calibrate runs/emotion          # a run trained with --no-calibrate, or an older one
  tfemotion calibrate runs/emotion --json""",
    "predict": """examples:
  tfemotion predict --model runs/emotion "i feel great today" "what a scary night"
  tfemotion predict --model runs/emotion/serving/emotion --file tweets.txt --json > labels.jsonl""",
    "export": """examples:
  tfemotion export --run runs/emotion --base-path serving/models
  tfemotion export --run runs/emotion --base-path serving/models --name emotion --version 2""",
    "serve": """examples:
  tfemotion serve --base-path runs/emotion/serving
  tfemotion serve --base-path runs/emotion/serving --model-config serving/models.config \\
      --enable-batching --batching-parameters-file serving/batching-cpu.config""",
    "query": """examples:
  tfemotion query "i feel great today"
  cat tweets.txt | tfemotion query --server 127.0.0.1:8500 --api classify --json""",
    "score": """examples:
  tfemotion score --model runs/emotion --input 'tickets/*.jsonl' --output scored/tickets
  tfemotion score --model gs://b/m/emotion --input 'gs://b/posts/*.csv' --output gs://b/out/p \\
      -- --runner=DataflowRunner --project=P --region=R --temp_location=gs://b/tmp""",
    "run": """examples:
  tfemotion run --data dair-ai/emotion --model distilbert-base-uncased --out runs/emotion
  tfemotion run --data data/ --model path/to/checkpoint --out runs/mine --epochs 3 \\
      --baseline-batch-size 128 --stages train evaluate export""",
}


def _subparser(sub: Any, name: str, help_text: str, func: Callable[[argparse.Namespace], int],
               json_flag: bool = True, description: str = "") -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text,
                            description=textwrap.fill(
                                f"{help_text[0].upper()}{help_text[1:]}. {description}", 79),
                            epilog=EXAMPLES[name],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true",
                        help="also show TensorFlow's start-up log, transformers' loading reports "
                             "and debug messages")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=func, parser=parser)
    return parser


def _text_inputs(parser: argparse.ArgumentParser, batch_help: str) -> None:
    parser.add_argument("texts", nargs="*", metavar="TEXT",
                        help="texts to classify (default: --file, or standard input)")
    parser.add_argument("--file", help="read texts from this file, one per line ('-': standard "
                                       "input); every line is a text, empty ones too, so the "
                                       "results line up with the lines; they are printed as "
                                       "they come")
    parser.add_argument("--batch-size", type=int, default=64, help=batch_help)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per stage.

    Example:
        >>> build_parser().parse_args(["train", "--data", "d", "--out", "o", "--lr", "5e-5"]).learning_rate
        5e-05
    """
    parser = argparse.ArgumentParser(
        prog="tfemotion",
        description="Fine-tune transformer text classifiers with TensorFlow/Keras and serve them "
                    "with TensorFlow Serving (chapter 2 of NLP with Transformers).",
        epilog="`tfemotion COMMAND --help` lists a command's flags and examples.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = _subparser(sub, "explore", "class balance and text lengths", cmd_explore)
    add_config_flags(p, cfg.DataConfig)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", help="checkpoint whose tokenizer adds token-length statistics")
    p.add_argument("--max-length", type=int, help="maximum length (default: the model's)")

    p = _subparser(sub, "baseline", "hidden-state features + logistic regression", cmd_baseline)
    add_config_flags(p, cfg.DataConfig)
    add_config_flags(p, cfg.FeatureConfig)
    p.add_argument("--out", required=True, help="output folder")

    p = _subparser(sub, "train", "fine-tune a sequence classifier with Keras", cmd_train)
    add_config_flags(p, cfg.DataConfig)
    add_config_flags(p, cfg.FinetuneConfig)
    p.add_argument("--out", required=True, help="run folder")

    p = _subparser(sub, "audit", "likely label errors of the training data, from out-of-fold "
                   "predictions", cmd_audit,
                   description="K trainings with the recipe of `tfemotion train` (its flags), "
                               "each predicting the texts it left out; confident learning "
                               "(cleanlab) flags the labels they contradict. Writes "
                               "OUT/audit: label_issues.csv/.md (file and line of each text), "
                               "label_issues.png, summary.json. Run it again to resume.")
    add_config_flags(p, cfg.DataConfig)
    add_config_flags(p, cfg.FinetuneConfig, skip=("resume",))
    add_config_flags(p, cfg.AuditConfig)
    p.add_argument("--out", required=True, help="output folder (the audit writes OUT/audit)")

    p = _subparser(sub, "evaluate", "metrics, confusion matrix and error analysis of a run",
                   cmd_evaluate)
    p.add_argument("--run", required=True,
                   help="run folder written by `tfemotion train`, or the OUT folder of "
                        "`tfemotion run`")
    p.add_argument("--split", choices=("validation", "test"), default="validation",
                   help="split to evaluate (default: %(default)s)")

    p = _subparser(sub, "calibrate", "fit a run's temperatures again on its held-out texts",
                   cmd_calibrate,
                   description="The run's validation split (or the share fine-tuning held out "
                               "of the training split) gives the temperature that makes its "
                               "probabilities calibrated; a multi-label run gets one per label "
                               "and its thresholds tuned again. The run record keeps them; the "
                               "export, predict and evaluate apply them.")
    p.add_argument("run", nargs="?", metavar="RUN",
                   help="run folder written by `tfemotion train`, or the OUT folder of "
                        "`tfemotion run`")
    p.add_argument("--run", dest="run_option", help=argparse.SUPPRESS)

    p = _subparser(sub, "predict", "classify texts with a saved model or an export", cmd_predict,
                   json_flag=False)
    p.add_argument("--model", required=True,
                   help="a run folder (or the OUT folder of `tfemotion run`), a saved model "
                        "folder (RUN/model), or an export: BASE/NAME/VERSION or BASE/NAME (its "
                        "highest version; TensorFlow only, no transformers)")
    _text_inputs(p, "texts per forward pass (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per text (JSON Lines): text, label, scores")
    p.add_argument("--plot", help="write the first text's probability bar chart to this PNG")

    p = _subparser(sub, "export", "SavedModel for TensorFlow Serving (raw text in)", cmd_export)
    p.add_argument("--run", required=True,
                   help="run folder written by `tfemotion train`, or the OUT folder of "
                        "`tfemotion run`")
    add_config_flags(p, cfg.ExportConfig)

    p = _subparser(sub, "serve",
                   "development server, gRPC and REST (production: TensorFlow Serving)",
                   cmd_serve, json_flag=False)
    p.add_argument("--base-path", required=True, help="folder holding NAME/VERSION SavedModels")
    add_config_flags(p, cfg.ServingConfig, skip=("timeout", "retries", "retry_backoff"),
                     help_texts={"host": "Address to bind: 127.0.0.1 (this machine only) or "
                                         "0.0.0.0 (every interface)."})

    p = _subparser(sub, "query", "classify texts with a TensorFlow Serving server over gRPC",
                   cmd_query, json_flag=False)
    p.add_argument("--server", default="127.0.0.1:8500", help="HOST:PORT (default: %(default)s)")
    add_config_flags(p, cfg.ServingConfig, only=("name", "timeout", "retries", "retry_backoff"))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="model version (default: the server's latest)")
    which.add_argument("--label", help="version label, e.g. stable or canary")
    p.add_argument("--api", choices=("predict", "classify"), default="predict",
                   help="TF Serving API to call (default: %(default)s)")
    _text_inputs(p, "texts per request (default: %(default)s; at most the server's batch cap)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object per text (JSON Lines): text, label, scores, "
                        "version")

    p = _subparser(sub, "score", "score a corpus with an export on Apache Beam (local, Dataflow, "
                                 "Flink, Spark)", cmd_score,
                   description="Every input record ends up in the scores or in the dead-letter "
                               "output beside them, with its file, line and the reason. Beam "
                               "pipeline options follow `--`; without --runner the job runs on "
                               "this machine, one worker process per core.")
    p.add_argument("--model", required=True,
                   help="an export: BASE/NAME/VERSION, BASE/NAME (its highest version) or the "
                        "OUT folder of `tfemotion run`; local or gs://, s3://, hdfs://")
    p.add_argument("--input", required=True, nargs="+", metavar="PATH_OR_GLOB",
                   help="input files (quote globs so that the shell leaves them to Beam)")
    p.add_argument("--output", required=True, metavar="PREFIX",
                   help="prefix of the files written: PREFIX-SSSSS-of-NNNNN.EXT (scores), "
                        "PREFIX-dead-letter-*.EXT, PREFIX-counts.json")
    add_config_flags(p, cfg.ScoringConfig)
    p.add_argument("beam_args", nargs="*", metavar="-- BEAM_OPTION",
                   help="Beam pipeline options after `--`, e.g. -- --runner=DataflowRunner "
                        "--project=P --region=R --temp_location=gs://B/tmp")

    p = _subparser(
        sub, "run", "the main job: explore, baseline, train, evaluate, export", cmd_run,
        description="Each flag sets one stage's setting: flags without a prefix are the "
                    "fine-tuning ones, --baseline-* the feature baseline's, --export-* the "
                    "export's (which otherwise reuses the run's maximum length). --model and the "
                    "data flags serve every stage.")
    add_config_flags(p, cfg.DataConfig)
    add_config_flags(p, cfg.FinetuneConfig, help_texts={
        "model": "Checkpoint of every stage (features and fine-tuning): hub id or local folder."})
    add_config_flags(p, cfg.FeatureConfig, prefix="baseline", skip=("model",))
    add_config_flags(p, cfg.ExportConfig, prefix="export", skip=("base_path",))
    p.add_argument("--out", required=True,
                   help="output folder for every stage: OUT/explore, OUT/baseline, OUT/run, "
                        "OUT/serving")
    add_config_flags(p, cfg.AuditConfig, prefix="audit")
    p.add_argument("--audit", action="store_true",
                   help="also audit the training labels (OUT/audit; K more trainings, "
                        "--audit-folds): the same as naming the audit stage in --stages")
    p.add_argument("--stages", nargs="+", choices=STAGES + OPTIONAL_STAGES, default=list(STAGES),
                   help="stages to run, in order (default: all)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``tfemotion`` console script; returns the exit code.

    Example:
        >>> main(["--version"])  # doctest: +SKIP
        tfemotion 0.1.0
    """
    from tfemotion import logs

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.verbose:
        logs.quiet()
    logs.show_progress(verbose=args.verbose)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("tfemotion: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tfemotion predict ... | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # no second error while Python flushes at exit
        return 0
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError,
            RuntimeError, OSError) as error:
        if os.environ.get("TFEMOTION_DEBUG") or args.verbose:
            raise
        print(f"tfemotion {args.command}: error: {error}", file=sys.stderr)
        return 1


# endregion
