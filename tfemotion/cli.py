"""The ``tfemotion`` command line: one subcommand per stage, flags built from ``config.py``.

Nothing here computes anything: each subcommand turns its flags into config dataclasses,
calls the stage's public function and prints what it returned. Heavy libraries (TensorFlow,
transformers, datasets) are imported inside the subcommands, so ``tfemotion --help`` and
argument errors answer at once.

Example:
    >>> build_parser().parse_args(["baseline", "--data", "d", "--out", "o", "--pooling", "mean"]).pooling
    'mean'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any, Callable, Optional, Sequence

from tfemotion import __version__
from tfemotion import config as cfg

# region Flags from dataclasses


def _flag_type(annotation: str) -> tuple[Callable[[str], Any], bool]:
    """(converter, is_list) for a dataclass field's annotation string."""
    if "tuple" in annotation:
        return str, True
    for name, converter in (("bool", bool), ("int", int), ("float", float)):
        if annotation.replace("Optional[", "").rstrip("]") == name:
            return converter, False
    return str, False


def add_config_flags(parser: argparse.ArgumentParser, config_class: type,
                     only: Optional[Sequence[str]] = None, skip: Sequence[str] = ()) -> None:
    """Add one flag per field of ``config_class`` (help, choices and aliases from its metadata).

    Flags default to ``argparse.SUPPRESS``: an omitted flag leaves the dataclass default in force,
    so defaults are stated once, in ``config.py``.

    Example:
        >>> p = argparse.ArgumentParser(); add_config_flags(p, cfg.FeatureConfig, only=["pooling"])
        >>> p.parse_args([])
        Namespace()
    """
    existing = {action.dest for action in parser._actions}
    for field in dataclasses.fields(config_class):
        if (only is not None and field.name not in only) or field.name in skip or field.name in existing:
            continue
        meta = field.metadata
        flags = meta.get("flags") or ("--" + field.name.replace("_", "-"),)
        converter, is_list = _flag_type(str(field.type))
        default = field.default if field.default is not dataclasses.MISSING else None
        help_text = f"{meta.get('help', '')} (default: {default})"
        kwargs: dict[str, Any] = {"dest": field.name, "default": argparse.SUPPRESS, "help": help_text}
        if converter is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=converter, metavar=field.name.upper())
            if meta.get("choices"):
                kwargs.update(choices=meta["choices"], metavar=None)
            if is_list:
                kwargs["nargs"] = "+"
        parser.add_argument(*flags, **kwargs)


def config_from_args(config_class: type, args: argparse.Namespace, **overrides: Any) -> Any:
    """Build ``config_class`` from the parsed flags that name its fields.

    Example:
        >>> config_from_args(cfg.FeatureConfig, argparse.Namespace(pooling="mean")).pooling
        'mean'
    """
    names = {f.name for f in dataclasses.fields(config_class)}
    values = {k: v for k, v in vars(args).items() if k in names}
    values.update({k: v for k, v in overrides.items() if v is not None})
    return config_class(**values)


# endregion
# region Subcommands


def _print_metrics(title: str, metrics: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    print(f"  {'split':<12}{'accuracy':>10}{'f1_weighted':>13}{'f1_macro':>10}")
    for split, values in metrics.items():
        print(f"  {split:<12}{values['accuracy']:>10.4f}{values['f1_weighted']:>13.4f}"
              f"{values['f1_macro']:>10.4f}")


def cmd_explore(args: argparse.Namespace) -> int:
    from tfemotion.explore import explore

    summary = explore(config_from_args(cfg.DataConfig, args), args.out, model=args.model,
                      max_length=args.max_length)
    print(f"labels: {', '.join(summary['label_names'])}")
    for split, stats in summary["splits"].items():
        line = f"  {split:<11} {stats['rows']:>7} rows, {stats['words_mean']:.1f} words/text (max {stats['words_max']})"
        if "tokens_mean" in stats:
            line += (f", {stats['tokens_mean']:.1f} tokens/text (max {stats['tokens_max']}, "
                     f"{100 * stats['share_longer_than_max']:.2f}% truncated)")
        print(line)
    print(f"wrote {args.out}/summary.json, class_distribution.png, words_per_text.png")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    data_config = config_from_args(cfg.DataConfig, args)
    feature_config = config_from_args(cfg.FeatureConfig, args)
    from tfemotion.data import load_splits
    from tfemotion.features import run_baseline

    metrics = run_baseline(load_splits(data_config), feature_config, args.out)
    features = metrics["features"]
    print(f"features: {features['texts']} texts in {features['seconds']:.1f} s "
          f"({features['texts_per_second']:.1f} texts/s)")
    for model in ("logistic_regression", "dummy"):
        _print_metrics(model, metrics[model])
    plots = "confusion_matrix.png" + (", umap.png" if feature_config.umap else "")
    print(f"\nwrote {args.out}/metrics.json, {plots}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    data_config = config_from_args(cfg.DataConfig, args)
    finetune_config = config_from_args(cfg.FinetuneConfig, args)
    from tfemotion.data import load_splits
    from tfemotion.finetune import train

    metrics = train(load_splits(data_config), data_config, finetune_config, args.out)
    _print_metrics(f"best epoch {metrics['best_epoch']}",
                   {s: metrics[s] for s in ("validation", "test") if s in metrics})
    print(f"\ntrained in {metrics['train_seconds']:.0f} s "
          f"({metrics['train_examples_per_second']:.1f} examples/s); run folder: {args.out}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from tfemotion.evaluate import evaluate_run

    result = evaluate_run(args.run, args.split)
    _print_metrics(f"{args.run} ({args.split})", {args.split: result})
    if "report" in result:
        print(result["report"])
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from tfemotion.predict import plot_probabilities, predict

    results = predict(args.model, args.texts)
    if args.plot:
        plot_probabilities(results[0], args.plot, text=args.texts[0])
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for text, result in zip(args.texts, results):
            print(f"{result['label']:<12} {result['scores'][result['label']]:.3f}  {text}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tfemotion.export import export_run

    report = export_run(args.run, config_from_args(cfg.ExportConfig, args))
    print(json.dumps(report, indent=2, default=str))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from tfemotion.devserver import serve

    serve(args.base_path, config_from_args(cfg.ServingConfig, args))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from tfemotion.serving import format_query, query

    result = query(config_from_args(cfg.ServingConfig, args), args.texts, server=args.server,
                   version=args.version, label=args.label, api=args.api)
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else format_query(result))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: explore -> baseline -> train -> evaluate -> export."""
    configs = [config_from_args(c, args) for c in
               (cfg.DataConfig, cfg.FeatureConfig, cfg.FinetuneConfig, cfg.ExportConfig)]
    from tfemotion.pipeline import run_all

    results = run_all(
        *configs,
        args.out,
        stages=args.stages,
        progress=lambda message: print(f"\n== {message}", flush=True),
    )
    for stage, metrics in results.items():
        if stage in ("baseline",):
            _print_metrics("baseline: logistic regression", metrics["logistic_regression"])
        if stage == "train":
            _print_metrics(f"fine-tuned (best epoch {metrics['best_epoch']})",
                           {s: metrics[s] for s in ("validation", "test") if s in metrics})
    print(f"\nall outputs in {args.out}")
    return 0


# endregion
# region Parser

STAGES = ("explore", "baseline", "train", "evaluate", "export")


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
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("explore", help="class balance and text lengths")
    add_config_flags(p, cfg.DataConfig)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", help="checkpoint whose tokenizer adds token-length statistics")
    p.add_argument("--max-length", type=int, help="maximum length (default: the model's)")
    p.set_defaults(func=cmd_explore)

    p = sub.add_parser("baseline", help="hidden-state features + logistic regression")
    add_config_flags(p, cfg.DataConfig)
    add_config_flags(p, cfg.FeatureConfig)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("train", help="fine-tune a sequence classifier with Keras")
    add_config_flags(p, cfg.DataConfig)
    add_config_flags(p, cfg.FinetuneConfig)
    p.add_argument("--out", required=True, help="run folder")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics, confusion matrix and error analysis of a run")
    p.add_argument("--run", required=True, help="run folder written by `tfemotion train`")
    p.add_argument("--split", choices=("validation", "test"), default="validation")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify texts with a saved model")
    p.add_argument("--model", required=True, help="saved model folder (RUN/model)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--plot", help="write the first text's probability bar chart to this PNG")
    p.add_argument("texts", nargs="+", metavar="TEXT")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="SavedModel for TensorFlow Serving (raw text in)")
    p.add_argument("--run", required=True, help="run folder written by `tfemotion train`")
    add_config_flags(p, cfg.ExportConfig)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("serve", help="development gRPC server (production: TensorFlow Serving)")
    p.add_argument("--base-path", required=True, help="folder holding NAME/VERSION SavedModels")
    add_config_flags(p, cfg.ServingConfig, skip=("timeout", "retries", "retry_backoff"))
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("query", help="classify texts with a TensorFlow Serving server over gRPC")
    p.add_argument("--server", default="127.0.0.1:8500", help="HOST:PORT (default: %(default)s)")
    add_config_flags(p, cfg.ServingConfig, only=("name", "timeout", "retries", "retry_backoff"))
    which = p.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="model version (default: the server's latest)")
    which.add_argument("--label", help="version label, e.g. stable or canary")
    p.add_argument("--api", choices=("predict", "classify"), default="predict")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("texts", nargs="+", metavar="TEXT")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("run", help="the main job: explore, baseline, train, evaluate, export")
    for config_class in (cfg.DataConfig, cfg.FeatureConfig, cfg.FinetuneConfig):
        add_config_flags(p, config_class)
    add_config_flags(p, cfg.ExportConfig, only=("name", "verify"))
    p.add_argument("--out", required=True, help="output folder for every stage")
    p.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                   help="stages to run, in order (default: all)")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``tfemotion`` console script; returns the exit code.

    Example:
        >>> main(["--version"])  # doctest: +SKIP
        tfemotion 0.1.0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("tfemotion: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, ImportError,
            RuntimeError) as error:
        if os.environ.get("TFEMOTION_DEBUG"):
            raise
        print(f"tfemotion {args.command}: error: {error}", file=sys.stderr)
        return 1


# endregion
