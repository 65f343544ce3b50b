"""Bulk scoring on Apache Beam: ``ScoreTexts`` for your own pipelines, ``score`` for a corpus.

``ScoreTexts(export)`` turns a ``PCollection`` of texts (or of ``(key, text)`` pairs) into one
result per text with Beam's ``RunInference`` over ``ExportModelHandler``; texts the export
fails on come out on a second output::

    with beam.Pipeline() as p:
        scored, failed = p | beam.Create(["i feel great"]) | ScoreTexts("models/emotion/1")

``score`` (``tfemotion score``) is the whole job: the input files cut into pieces, each record
read with its file and line, scored, and written with the same rows as ``tfemotion predict``
gives; records that cannot be scored go to a dead-letter output beside the scores, with the
reason. At the end ``PREFIX-counts.json`` holds the records read, scored and dead-lettered
(read = scored + dead-lettered) and the seconds taken. The same pipeline runs locally (Beam's
FnApiRunner, one worker process per core, offline) and on Dataflow, Flink or Spark
(``--runner`` and its options pass through to Beam).

Example:
    >>> import apache_beam as beam
    >>> with beam.Pipeline() as p:
    ...     scored, failed = p | beam.Create([("a", "i feel happy")]) | ScoreTexts(export_dir)
    ...     _ = scored | beam.Map(lambda row: print(row[0], row[1]["label"] in
    ...                                              task.label_names))
    a True
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import (DirectOptions, PipelineOptions,
                                                  StandardOptions)

from tfemotion.config import ScoringConfig
from tfemotion.scoring import outputs
from tfemotion.scoring.model import ExportModelHandler, read_export_record, resolve_export
from tfemotion.scoring.sources import (CSV, PARQUET, DeadLetter, Piece, count_newlines,
                                       first_lines, input_format, parquet_pieces,
                                       piece_bytes_for, plan_pieces, read_piece)
from tfemotion.task import Task

FAILED = "failed"
DEAD = "dead"


class ScoreTexts(beam.PTransform):
    """Texts in, ``(scored, failed)`` out: the export's result for each text, and the texts it
    failed on.

    Args:
        export_path: str. An export version folder, model folder or ``OUT`` of ``tfemotion run``
            (local or any filesystem Beam knows).
        min_batch_size, max_batch_size: int. Batch sizes for Beam's ``BatchElements``.

    The input holds texts, or ``(key, text)`` pairs. ``scored`` holds ``(key, result)`` pairs
    (the text itself is the key of an unkeyed input): ``result`` is ``{"label", "label_id",
    "scores"}`` (and ``"labels"`` for a multi-label export) as in ``ExportModelHandler``.
    ``failed`` holds ``(key, reason)`` pairs.
    """

    def __init__(self, export_path: str, *, min_batch_size: int = 1, max_batch_size: int = 64,
                 progress_dir: Optional[str] = None) -> None:
        super().__init__()
        self._handler = ExportModelHandler(resolve_export(export_path),
                                           min_batch_size=min_batch_size,
                                           max_batch_size=max_batch_size,
                                           progress_dir=progress_dir)

    def expand(self, texts: beam.PCollection) -> Any:
        return (
            texts
            | "Key" >> beam.Map(_keyed)
            | "RunInference" >> RunInference(KeyedModelHandler(self._handler))
            | "Split" >> beam.ParDo(_SplitFailures()).with_outputs(FAILED, main="scored")
        )


def _keyed(element: Any) -> tuple[Any, str]:
    if isinstance(element, str):
        return element, element
    key, text = element
    return key, text


class _SplitFailures(beam.DoFn):
    def process(self, element: Any) -> Iterator[Any]:
        key, prediction = element
        result = prediction.inference
        if "error" in result:
            yield beam.pvalue.TaggedOutput(FAILED, (key, result["error"]))
        else:
            yield key, result


class _ReadPieces(beam.DoFn):
    """Records of the pieces, dead records on the ``dead`` output; counts as Beam metrics."""

    def __init__(self, config: ScoringConfig) -> None:
        self._config = config
        self._read = beam.metrics.Metrics.counter("tfemotion", "records_read")
        self._dead = beam.metrics.Metrics.counter("tfemotion", "records_dead_lettered")

    def process(self, piece: Piece, newlines: dict) -> Iterator[Any]:
        for record in read_piece(piece, self._config, first_lines(newlines, piece)):
            self._read.inc()
            if isinstance(record, DeadLetter):
                self._dead.inc()
                yield beam.pvalue.TaggedOutput(DEAD, record)
            else:
                yield record


@dataclass(frozen=True)
class ScoreReport:
    """What ``score`` did: the counts, the seconds and where it wrote."""

    read: int
    scored: int
    dead_lettered: int
    seconds: float
    scores: str
    dead_letters: str
    counts: str
    runner: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``PREFIX-counts.json``)."""
        return dict(self.__dict__)


def score(model: str, inputs: Sequence[str], output: str, config: Optional[ScoringConfig] = None,
          beam_args: Sequence[str] = (), progress: bool = False) -> ScoreReport:
    """Score every record of ``inputs`` with an export; write scores, dead letters and counts.

    Args:
        model: str. An export version folder, model folder, or ``OUT`` of ``tfemotion run``.
        inputs: paths or globs (local, ``gs://``, ``s3://``, ``hdfs://``...).
        output: str. Prefix of the files written: ``PREFIX-SSSSS-of-NNNNN.EXT`` (scores),
            ``PREFIX-dead-letter-SSSSS-of-NNNNN.EXT``, ``PREFIX-counts.json``.
        config: ScoringConfig. Formats, fields, batch sizes, text limit.
        beam_args: Beam pipeline options (``--runner=DataflowRunner --project=...``). Without
            ``--runner``, Beam's FnApiRunner runs locally with one worker process per core.
        progress: bool. Print a progress line on standard error (local runs).

    Returns:
        ScoreReport.

    Raises:
        FileNotFoundError: no export, or an input pattern that matches no file.
        FileExistsError: outputs of an earlier run under ``output``.
        ValueError: an input whose format cannot be told.

    Example:
        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> _ = open(os.path.join(folder, "in.txt"), "w").write("i feel happy\\n\\nso sad\\n")
        >>> report = score(export_dir, [os.path.join(folder, "in.txt")],
        ...                os.path.join(folder, "out"), beam_args=["--direct_num_workers=1"])
        >>> report.read, report.scored, report.dead_lettered
        (3, 2, 1)
    """
    config = config or ScoringConfig()
    start = time.monotonic()
    _check_output_is_new(output)
    export = resolve_export(model)
    task = read_export_record(export).task
    options = _options(beam_args)
    local = options.view_as(StandardOptions).runner is None
    workers = _local_workers(options) if local else 1
    pieces = _plan(inputs, config, workers)
    progress_dir = tempfile.mkdtemp(prefix="tfemotion-progress-") if local and progress else None
    reporter = _Progress(progress_dir) if progress_dir else None
    try:
        pipeline = beam.Pipeline(runner=_local_runner() if local else None, options=options)
        _build(pipeline, pieces, export, task, config, output, progress_dir)
        if reporter:
            reporter.start()
        result = pipeline.run()
        result.wait_until_finish()
    finally:
        if reporter:
            reporter.stop()  # the count of the last batches shows in the summary
        if progress_dir:
            shutil.rmtree(progress_dir, ignore_errors=True)
    counts = _read_counts(output)
    report = ScoreReport(
        read=counts["read"], scored=counts["scored"], dead_lettered=counts["dead_lettered"],
        seconds=round(time.monotonic() - start, 3),
        scores=f"{output}-*{_extension(config)}",
        dead_letters=f"{output}{outputs.DEAD_LETTER_SUFFIX}-*{_extension(config)}",
        counts=f"{output}{outputs.COUNTS_SUFFIX}",
        runner="local" if local else str(options.view_as(StandardOptions).runner))
    _write_counts(report)
    return report


def _check_output_is_new(output: str) -> None:
    """Refuse a prefix that already has outputs: shards of two runs would mix."""
    existing = [m.path for m in FileSystems.match([output + "-*"])[0].metadata_list]
    if existing:
        raise FileExistsError(f"{output}: {len(existing)} files of an earlier run are there "
                              f"({existing[0]}, ...); remove them or choose another --output. "
                              f"Received: output={output!r}")


def _options(beam_args: Sequence[str]) -> PipelineOptions:
    options = PipelineOptions(list(beam_args))
    direct = options.view_as(DirectOptions)
    if options.view_as(StandardOptions).runner is None:
        if direct.direct_num_workers is None:
            direct.direct_num_workers = os.cpu_count() or 1
        if direct.direct_num_workers != 1 and direct.direct_running_mode == "in_memory":
            direct.direct_running_mode = "multi_processing"
    return options


def _local_workers(options: PipelineOptions) -> int:
    return options.view_as(DirectOptions).direct_num_workers or os.cpu_count() or 1


def _local_runner() -> Any:
    """Beam's FnApiRunner (the DirectRunner would try the Prism runner first, which downloads
    its binary at start)."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def _plan(inputs: Sequence[str], config: ScoringConfig, workers: int) -> list[Piece]:
    """The pieces of every input file; each pattern must match at least one file."""
    if not inputs:
        raise ValueError("no input: pass at least one path or glob. Received: inputs=[]")
    files: list[tuple[str, int, str]] = []
    for pattern in inputs:
        matched = FileSystems.match([pattern])[0].metadata_list
        if not matched:
            raise FileNotFoundError(f"{pattern}: no such file (the pattern matches nothing). "
                                    f"Received: input={pattern!r}")
        for match in sorted(matched, key=lambda m: m.path):
            files.append((match.path, match.size_in_bytes,
                          input_format(match.path, config.input_format)))
    total = sum(size for _, size, _ in files)
    size = (int(config.piece_mb * (1 << 20)) if config.piece_mb
            else piece_bytes_for(total, workers))
    pieces: list[Piece] = []
    for path, file_size, fmt in files:
        pieces += parquet_pieces(path) if fmt == PARQUET else plan_pieces(path, file_size, fmt,
                                                                         size)
    return pieces


def _build(pipeline: beam.Pipeline, pieces: list[Piece], export: str, task: Task,
           config: ScoringConfig, output: str, progress_dir: Optional[str]) -> None:
    last = {piece.path: piece.index for piece in pieces}
    counted = [p for p in pieces if p.format not in (CSV, PARQUET) and p.index < last[p.path]]
    newlines = (pipeline
                | "PiecesBeforeOthers" >> beam.Create(counted or [None])
                | "CountNewlines" >> beam.FlatMap(
                    lambda p: [] if p is None else [((p.path, p.index), count_newlines(p))]))
    read = (pipeline
            | "Pieces" >> beam.Create(pieces)
            | "Spread" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(_ReadPieces(config), beam.pvalue.AsDict(newlines))
            .with_outputs(DEAD, main="records"))
    scored, failed = (read.records
                      | "Texts" >> beam.Map(lambda record: (record, record.text))
                      | "Score" >> ScoreTexts(export, min_batch_size=config.min_batch_size,
                                              max_batch_size=config.max_batch_size,
                                              progress_dir=progress_dir))
    rows = scored | "Rows" >> beam.Map(lambda pair: outputs.scored_row(*pair, task))
    dead = ((read[DEAD], failed | "FailedRecords" >> beam.Map(
        lambda pair: outputs.failed_record(*pair)))
            | "AllDead" >> beam.Flatten())
    _write_rows(rows, output, config, task)
    _write_dead(dead, output + outputs.DEAD_LETTER_SUFFIX, config)
    _write_counts_in_pipeline(pipeline, read.records, read[DEAD], rows, dead, output)


def _extension(config: ScoringConfig) -> str:
    return "." + config.output_format


def _write_rows(rows: beam.PCollection, output: str, config: ScoringConfig, task: Task) -> None:
    suffix = _extension(config)
    if config.output_format == "jsonl":
        (rows | "ScoresJson" >> beam.Map(outputs.jsonl_line)
         | "WriteScores" >> beam.io.WriteToText(output, file_name_suffix=suffix))
    elif config.output_format == "csv":
        names = outputs.columns(task)
        (rows | "ScoresCsv" >> beam.Map(
            lambda row: outputs.csv_line([outputs.flat_row(row, task)[n] for n in names]))
         | "WriteScores" >> beam.io.WriteToText(output, file_name_suffix=suffix,
                                                header=outputs.csv_line(names)))
    else:
        (rows | "ScoresFlat" >> beam.Map(outputs.flat_row, task=task)
         | "WriteScores" >> beam.io.WriteToParquet(output, outputs.parquet_schema(task),
                                                   file_name_suffix=suffix))


def _write_dead(dead: beam.PCollection, prefix: str, config: ScoringConfig) -> None:
    suffix = _extension(config)
    rows = dead | "DeadRows" >> beam.Map(DeadLetter.to_dict)
    if config.output_format == "jsonl":
        (rows | "DeadJson" >> beam.Map(outputs.jsonl_line)
         | "WriteDead" >> beam.io.WriteToText(prefix, file_name_suffix=suffix))
    elif config.output_format == "csv":
        (rows | "DeadCsv" >> beam.Map(
            lambda row: outputs.csv_line([row[n] for n in outputs.DEAD_COLUMNS]))
         | "WriteDead" >> beam.io.WriteToText(prefix, file_name_suffix=suffix,
                                              header=outputs.csv_line(list(outputs.DEAD_COLUMNS))))
    else:
        rows | "WriteDead" >> beam.io.WriteToParquet(prefix, outputs.parquet_schema(None, True),
                                                      file_name_suffix=suffix)


def _write_counts_in_pipeline(pipeline: beam.Pipeline, records: beam.PCollection,
                              read_dead: beam.PCollection, rows: beam.PCollection,
                              dead: beam.PCollection, output: str) -> None:
    """``PREFIX-counts.json`` from the pipeline's own counts (exact on every runner)."""
    def count(pcoll: beam.PCollection, name: str) -> Any:
        return beam.pvalue.AsSingleton(pcoll | f"Count{name}" >> beam.combiners.Count.Globally())

    (pipeline
     | "CountsImpulse" >> beam.Create([None])
     | "Counts" >> beam.Map(
         lambda _, records, read_dead, scored, dead: json.dumps(
             {"read": records + read_dead, "scored": scored, "dead_lettered": dead}),
         count(records, "Records"), count(read_dead, "ReadDead"), count(rows, "Scored"),
         count(dead, "Dead"))
     | "WriteCounts" >> beam.io.WriteToText(output + outputs.COUNTS_SUFFIX,
                                            shard_name_template=""))


def _read_counts(output: str) -> dict[str, int]:
    with FileSystems.open(output + outputs.COUNTS_SUFFIX) as handle:
        return json.loads(handle.read().decode("utf-8"))


def _write_counts(report: ScoreReport) -> None:
    text = json.dumps(report.to_dict(), indent=2) + "\n"
    if FileSystems.exists(report.counts):
        FileSystems.delete([report.counts])
    with FileSystems.create(report.counts) as handle:
        handle.write(text.encode("utf-8"))


class _Progress:
    """A line on standard error with the texts scored so far, from the workers' count files."""

    def __init__(self, folder: str, every: float = 1.0) -> None:
        self._folder = folder
        self._every = every
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._start = time.monotonic()

    def start(self) -> None:
        self._start = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def scored(self) -> int:
        total = 0
        for name in os.listdir(self._folder):
            if name.endswith(".tmp"):
                continue
            try:
                with open(os.path.join(self._folder, name)) as handle:
                    total += int(handle.read() or 0)
            except (OSError, ValueError):
                continue
        return total

    def _run(self) -> None:
        while not self._done.wait(self._every):
            self._show()

    def _show(self) -> None:
        count = self.scored()
        seconds = max(time.monotonic() - self._start, 1e-9)
        sys.stderr.write(f"scoring: {count:,} texts scored in {seconds:,.0f} s "
                         f"({count / seconds:,.0f} texts/s)\r")
        sys.stderr.flush()
