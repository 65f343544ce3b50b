"""The ``tfemotion-query`` command: ``tfemotion query`` without TensorFlow.

It takes the flags of ``tfemotion query`` and prints the same lines: a header naming the model
and version that answered, then one line per text as it comes (``--json``: one JSON object per
line), and exits as it does: 0 when every text was classified, 1 with a one-line error (no
traceback unless ``--verbose``), 2 for bad flags, 130 on Ctrl-C. ``tfemotion query`` runs the
same :func:`run`.

Example:
    >>> build_parser().parse_args(["--api", "classify", "so happy"]).api
    'classify'
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

from tfemotion_client.client import (APIS, DEFAULT_NAME, DEFAULT_RETRIES, DEFAULT_RETRY_BACKOFF,
                                     DEFAULT_SERVER, DEFAULT_TIMEOUT, query_stream)
from tfemotion_client.messages import target

PROG = "tfemotion-query"
EXAMPLES = """examples:
  tfemotion-query "i feel great today"
  cat tweets.txt | tfemotion-query --server 127.0.0.1:8500 --api classify --json"""

# A progress display for texts read from a file or standard input: called with the number of
# texts (None: unknown), gives a context manager with update(count).
Progress = Callable[[Optional[int]], Any]


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The parser of ``tfemotion-query``: the flags of ``tfemotion query``.

    Example:
        >>> build_parser().parse_args(["hi"]).server
        '127.0.0.1:8500'
    """
    parser = argparse.ArgumentParser(
        prog=prog, epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Classify texts with a TensorFlow Serving server over gRPC (tfemotion's "
                    "light client: grpcio and protobuf, no TensorFlow).")
    parser.add_argument("--verbose", action="store_true",
                        help="show debug messages (retries) and the traceback of an error")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="HOST:PORT (default: %(default)s)")
    parser.add_argument("--name", type=str, default=DEFAULT_NAME, metavar="NAME",
                        help="Model name. (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="TIMEOUT",
                        help="Client deadline per call, in seconds. (default: %(default)s)")
    parser.add_argument("--retries", type=int, default=DEFAULT_RETRIES, metavar="RETRIES",
                        help="Client retries on UNAVAILABLE, with exponential backoff. "
                             "(default: %(default)s)")
    parser.add_argument("--retry-backoff", type=float, default=DEFAULT_RETRY_BACKOFF,
                        metavar="RETRY_BACKOFF",
                        help="Client wait before the first retry, in seconds; doubles after "
                             "each one. (default: %(default)s)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--version", type=int, help="model version (default: the server's latest)")
    which.add_argument("--label", help="version label, e.g. stable or canary")
    parser.add_argument("--api", choices=APIS, default="predict",
                        help="TF Serving API to call (default: %(default)s)")
    parser.add_argument("texts", nargs="*", metavar="TEXT",
                        help="texts to classify (default: --file, or standard input)")
    parser.add_argument("--file", help="read texts from this file, one per line ('-': standard "
                                       "input); every line is a text, empty ones too, so the "
                                       "results line up with the lines; they are printed as "
                                       "they come")
    parser.add_argument("--batch-size", type=int, default=64,
                        help="texts per request (default: %(default)s; at most the server's "
                             "batch cap)")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per text (JSON Lines): text, label, scores, "
                             "version")
    return parser


def check_settings(args: argparse.Namespace) -> None:
    """Refuse the client settings ``tfemotion query`` refuses, in its words (its
    ``ServingConfig`` checks them there).

    Raises:
        ValueError: a model name with a slash or none, a timeout or backoff <= 0, retries < 0.

    Example:
        >>> check_settings(argparse.Namespace(name="emotion", timeout=0.0, retries=0,
        ...                                   retry_backoff=1.0))
        Traceback (most recent call last):
        ...
        ValueError: timeout must be a positive number. Received: timeout=0.0
    """
    if not args.name or "/" in args.name:
        raise ValueError(f"name must be a plain model name. Received: name={args.name!r}")
    for name in ("timeout", "retry_backoff"):
        value = getattr(args, name)
        if value <= 0:
            raise ValueError(f"{name} must be a positive number. Received: {name}={value!r}")
    if args.retries < 0:
        raise ValueError(f"retries must be >= 0. Received: retries={args.retries!r}")


# region Texts in, lines out


def read_texts(source: str | Path) -> Iterator[str]:
    """Texts to classify, one per line, from a file or ``"-"`` (standard input), read lazily.

    Line ends (``\\n``, ``\\r\\n``) and a UTF-8 byte order mark are removed; every line is a
    text, empty ones included, so results line up with the input.

    Raises:
        ValueError: a line that is not UTF-8 (the message names the file and line).
        FileNotFoundError: no such file.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "texts.txt")
        >>> _ = open(path, "wb").write(b"\\xef\\xbb\\xbfi feel great\\r\\n\\nso sad\\n")
        >>> list(read_texts(path))
        ['i feel great', '', 'so sad']
    """
    if str(source) == "-":
        yield from _decode_lines(sys.stdin.buffer, "<stdin>")
        return
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file of texts. Received: source={str(source)!r}")
    with path.open("rb") as handle:
        yield from _decode_lines(handle, str(path))


def _decode_lines(handle: Any, name: str) -> Iterator[str]:
    for number, raw in enumerate(handle, start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"{name}:{number}: bytes that are not UTF-8 (byte 0x"
                             f"{raw[error.start]:02x} at column {error.start + 1}). Re-save the "
                             f"file as UTF-8.") from None
        yield text.rstrip("\n").removesuffix("\r")


def input_texts(args: argparse.Namespace, parser: argparse.ArgumentParser
                ) -> tuple[Iterable[str], Optional[int]]:
    """The texts to classify: arguments, ``--file`` or standard input; their count if known.

    Exits through ``parser.error`` (status 2) on both arguments and ``--file``, or on nothing
    to read from a terminal.
    """
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


def format_prediction(prediction: dict[str, Any], width: int = 60) -> str:
    """One result as a line: label, its score, the text (shortened past ``width``).

    Example:
        >>> format_prediction({"text": "so happy", "label": "joy", "scores": {"joy": 0.9}})
        'joy       0.900  so happy'
        >>> format_prediction({"text": "wow", "labels": ["joy", "surprise"],
        ...                    "scores": {"joy": 0.9, "surprise": 0.7}})
        'joy 0.900, surprise 0.700  wow'
    """
    text = prediction["text"]
    text = text if len(text) <= width else text[: width - 1] + "…"
    if "labels" in prediction:  # multi-label: every predicted label with its probability
        found = ", ".join(f"{name} {prediction['scores'].get(name, float('nan')):.3f}"
                          for name in prediction["labels"]) or "(no label)"
        return f"{found}  {text}"
    score = prediction["scores"].get(prediction["label"], float("nan"))
    return f"{prediction['label']:<9} {score:.3f}  {text}"


def query_header(model: str, version: Optional[int], server: str) -> str:
    """The line above a table of answers: which model and version answered, and where.

    Example:
        >>> query_header("emotion", 2, "127.0.0.1:8500")
        'emotion version 2 at 127.0.0.1:8500'
    """
    return f"{model} version {version} at {server}"


class _Counter:
    """``N/TOTAL texts`` on standard error, redrawn in place (a terminal only)."""

    def __init__(self, total: Optional[int]):
        self.total, self.count = total, 0
        self.enabled = sys.stderr.isatty()

    def __enter__(self) -> "_Counter":
        return self

    def update(self, count: int) -> None:
        self.count += count
        if self.enabled:
            of = f"/{self.total}" if self.total is not None else ""
            sys.stderr.write(f"\r{self.count}{of} texts")
            sys.stderr.flush()

    def __exit__(self, *exc: Any) -> None:
        if self.enabled and self.count:
            sys.stderr.write("\r\033[K")  # leave no bar behind
            sys.stderr.flush()


# endregion


def run(args: argparse.Namespace, parser: argparse.ArgumentParser,
        progress: Optional[Progress] = None) -> int:
    """Classify the texts the flags name and print the answers as they come.

    Args:
        args: argparse.Namespace. The flags of :func:`build_parser` (``tfemotion query``'s).
        parser: argparse.ArgumentParser. The parser, for usage errors.
        progress: callable or None. Progress display for texts read from a file or standard
            input while the results go to a file or a pipe (default: a count on standard error
            when it is a terminal).

    Returns:
        0.

    Raises:
        ValueError: bad settings, no texts, a file line that is not UTF-8.
        FileNotFoundError: no such ``--file``.
        ServingError: the server refused or could not be reached.
    """
    check_settings(args)
    texts, total = input_texts(args, parser)
    server = target(args.server)
    predictions = query_stream(texts, server=server, name=args.name, version=args.version,
                               label=args.label, api=args.api, batch_size=args.batch_size,
                               timeout=args.timeout, retries=args.retries,
                               retry_backoff=args.retry_backoff)
    show_bar = not args.texts and not sys.stdout.isatty()
    count = 0
    with (progress or _Counter)(total) if show_bar else contextlib.nullcontext() as bar:
        for prediction in predictions:
            result = prediction.to_dict()
            if count == 0 and not args.json:
                print(query_header(args.name, result.get("version"), server))
            print(json.dumps(result, ensure_ascii=False) if args.json
                  else format_prediction(result), flush=True)
            count += 1
            if bar is not None:
                bar.update(1)
    if count == 0:
        raise ValueError("no texts to classify: the input held no lines. Received: 0 texts")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``tfemotion-query`` console script; returns the exit code.

    Example:
        >>> main(["--version", "2", "--label", "stable", "so happy"])  # usage error on stderr
        2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse's usage errors and --help
        return int(stop.code or 0)
    _show_log(args.verbose)
    try:
        return run(args, parser)
    except SystemExit as stop:  # parser.error in run
        return int(stop.code or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tfemotion-query ... | head`: the reader has what it wanted
        sys.stdout = open(os.devnull, "w")  # no second error while Python flushes at exit
        return 0
    except (ValueError, TypeError, ImportError, RuntimeError, OSError) as error:
        if os.environ.get("TFEMOTION_DEBUG") or args.verbose:
            raise
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1


def _show_log(verbose: bool) -> None:
    """The client's log records (warnings; debug too with --verbose) on standard error, as
    ``tfemotion`` prints its own: ``warning: ...``."""
    logger = logging.getLogger("tfemotion_client")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(getattr(h, "_tfemotion_client", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter())
        handler._tfemotion_client = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return f"{record.levelname.lower()}: {message}" if record.levelno >= logging.WARNING \
            else message


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
