"""Input records of bulk scoring: text lines, JSONL, CSV and Parquet files, read in pieces.

A file is cut into pieces that workers read independently: byte ranges of text and JSONL files
(a line belongs to the piece its first byte falls in), one piece per CSV file (a quoted field may
hold a line break), one per Parquet row group, one per compressed file. Every record keeps its
source: the file and the line (the row for Parquet, counted from 1).

A record that cannot be scored is a ``DeadLetter`` with the reason, never an exception: bytes
that are not UTF-8, an empty text, a text over the limit, a JSON line that is not an object with
a string text (or an empty line), a CSV row with the wrong number of fields.

Nothing here imports Apache Beam except through ``open_file`` (Beam's ``FileSystems``, so that
``gs://``, ``s3://`` and ``hdfs://`` paths read as local ones do).

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "texts.jsonl")
    >>> _ = open(path, "w").write('{"id": 7, "text": "i feel great"}\\n{"id": 8}\\n')
    >>> piece = Piece(path, JSONL, 0, os.path.getsize(path))
    >>> for record in read_piece(piece, ScoringConfig()):
    ...     print(record)
    Record(source='...texts.jsonl', line=1, text='i feel great', id='7')
    DeadLetter(source='...texts.jsonl', line=2, reason="no string field 'text'", content='{"id": 8}')
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Union

from tfemotion.config import ScoringConfig

TEXT, JSONL, CSV, PARQUET = "text", "jsonl", "csv", "parquet"
FORMATS = (TEXT, JSONL, CSV, PARQUET)
_EXTENSIONS = {".txt": TEXT, ".text": TEXT, ".jsonl": JSONL, ".ndjson": JSONL, ".json": JSONL,
               ".csv": CSV, ".parquet": PARQUET, ".pq": PARQUET}
_COMPRESSED = (".gz", ".bz2", ".deflate", ".zst", ".zstd", ".lzma", ".xz")
_CONTENT_CHARS = 200  # of a dead record's content kept in the dead-letter output


@dataclass(frozen=True)
class Record:
    """One text to score and where it came from (``id``: the input's own id, if it has one)."""

    source: str
    line: int
    text: str
    id: Optional[str] = None


@dataclass(frozen=True)
class DeadLetter:
    """One input record that was not scored, where it came from and why."""

    source: str
    line: int
    reason: str
    content: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The dead-letter output's JSON object."""
        return {"source": self.source, "line": self.line, "reason": self.reason,
                "content": self.content}


@dataclass(frozen=True)
class Piece:
    """A part of one input file that one worker reads: bytes ``[start, end)`` of a text or JSONL
    file, a whole CSV or compressed file (``end`` is -1), or Parquet row group ``start``.

    ``index`` counts the pieces of the file; ``first_line`` is the line number of the piece's
    first line when it is known when the piece is made (0: counted by ``count_newlines``).
    """

    path: str
    format: str
    start: int
    end: int
    index: int = 0
    first_line: int = 1


def input_format(path: str, forced: Optional[str] = None) -> str:
    """The format of an input file: ``forced``, or told from its extension (after ``.gz``...).

    Raises:
        ValueError: an extension that names no format, and no ``forced`` one.

    Example:
        >>> input_format("gs://bucket/posts-2026.jsonl.gz"), input_format("x.tsv", forced="text")
        ('jsonl', 'text')
    """
    if forced and forced != "auto":
        if forced not in FORMATS:
            raise ValueError(f"input format must be one of {', '.join(FORMATS)}. "
                             f"Received: input_format={forced!r}")
        return forced
    name = _strip_compression(path.rsplit("/", 1)[-1].lower())
    extension = name[name.rfind("."):] if "." in name else ""
    if extension not in _EXTENSIONS:
        raise ValueError(f"{path}: cannot tell the format from the extension "
                         f"{extension or '(none)'!r} (known: {', '.join(sorted(_EXTENSIONS))}); pass --input-format "
                         f"{'|'.join(FORMATS)}")
    return _EXTENSIONS[extension]


def is_compressed(path: str) -> bool:
    """True for a file Beam decompresses by its extension (read whole, not in byte ranges).

    Example:
        >>> is_compressed("a.txt.gz"), is_compressed("a.txt")
        (True, False)
    """
    return path.lower().endswith(_COMPRESSED)


def _strip_compression(name: str) -> str:
    for suffix in _COMPRESSED:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def plan_pieces(path: str, size: int, format: str, piece_bytes: int) -> list[Piece]:
    """Cut one file into the pieces that workers read (Parquet: see ``parquet_pieces``).

    Example:
        >>> [(p.start, p.end, p.first_line) for p in plan_pieces("a.txt", 250, TEXT, 100)]
        [(0, 100, 1), (100, 200, 0), (200, 250, 0)]
        >>> plan_pieces("a.csv", 250, CSV, 100)
        [Piece(path='a.csv', format='csv', start=0, end=-1, index=0, first_line=1)]
    """
    if format == CSV or is_compressed(path) or size <= piece_bytes:
        return [Piece(path, format, 0, -1 if format == CSV or is_compressed(path) else size)]
    count = math.ceil(size / piece_bytes)
    return [Piece(path, format, i * piece_bytes, min(size, (i + 1) * piece_bytes), i,
                  1 if i == 0 else 0) for i in range(count)]


def piece_bytes_for(total_bytes: int, workers: int, largest: int = 64 << 20,
                    smallest: int = 1 << 20) -> int:
    """Bytes per piece: four pieces per worker, within ``[smallest, largest]``.

    Example:
        >>> piece_bytes_for(10 << 20, workers=2) == (10 << 20) // 8
        True
    """
    return max(smallest, min(largest, math.ceil(total_bytes / max(1, 4 * workers))))


def count_newlines(piece: Piece) -> int:
    """Line breaks in a piece's byte range (what the pieces after it need for their line
    numbers)."""
    count = 0
    with open_file(piece.path) as handle:
        handle.seek(piece.start)
        left = piece.end - piece.start
        while left > 0:
            block = handle.read(min(left, 1 << 20))
            if not block:
                break
            count += block.count(b"\n")
            left -= len(block)
    return count


def first_lines(newlines: dict[tuple[str, int], int], piece: Piece) -> int:
    """The number of the first line that starts at or after a piece's first byte, from the line
    breaks of the file's earlier pieces (``count_newlines``).

    Example:
        >>> first_lines({("a.txt", 0): 3, ("a.txt", 1): 2}, Piece("a.txt", TEXT, 200, 300, 2, 0))
        6
    """
    if piece.first_line:
        return piece.first_line
    return 1 + sum(newlines.get((piece.path, i), 0) for i in range(piece.index))


def read_piece(piece: Piece, config: ScoringConfig, first_line: Optional[int] = None,
               ) -> Iterator[Union[Record, DeadLetter]]:
    """The records of one piece, in order: a ``Record`` per text, a ``DeadLetter`` per record
    that cannot be scored.

    Args:
        piece: Piece. What to read.
        config: ScoringConfig. Field names and the text limit.
        first_line: int, optional. The number of the line at the piece's start (default: the
            piece's own ``first_line``).
    """
    if piece.format == CSV:
        yield from _csv_records(piece, config)
    elif piece.format == PARQUET:
        yield from _parquet_records(piece, config)
    else:
        line = piece.first_line if first_line is None else first_line
        for number, raw in _lines(piece, line, _line_limit(config)):
            yield _line_record(piece, number, raw, config)


def _line_limit(config: ScoringConfig) -> int:
    """Bytes a line may hold before it is refused unread: 4 bytes per character of UTF-8, 6 for
    a JSON escape, and room for the other fields of a JSON line."""
    return 6 * config.max_text_chars + 65536


def _lines(piece: Piece, first_line: int, limit: int) -> Iterator[tuple[int, Optional[bytes]]]:
    """``(line number, bytes without the line end)`` of every line that starts in the piece;
    ``None`` for a line over ``limit`` bytes (skipped, not held in memory)."""
    with open_file(piece.path, compressed=is_compressed(piece.path)) as handle:
        position = piece.start
        number = first_line
        if piece.start > 0:  # skip the rest of a line that the piece before owns
            handle.seek(piece.start - 1)
            position += len(handle.readline()) - 1
            number += position > piece.start  # its line break lies in this piece's bytes
        while piece.end < 0 or position < piece.end:
            raw = handle.readline(limit + 1)
            if not raw:
                return
            position += len(raw)
            if len(raw) > limit and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):
                    raw = handle.readline(1 << 20)
                    position += len(raw)
                yield number, None
            else:
                yield number, raw.rstrip(b"\n").removesuffix(b"\r")
            number += 1


def _line_record(piece: Piece, number: int, raw: Optional[bytes], config: ScoringConfig,
                 ) -> Union[Record, DeadLetter]:
    def dead(reason: str, content: str = "") -> DeadLetter:
        return DeadLetter(piece.path, number, reason, content[:_CONTENT_CHARS])

    if raw is None:
        return dead(f"line over {_line_limit(config):,} bytes")
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return dead(f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at column {error.start + 1})",
                    raw.decode("utf-8", "replace"))
    if piece.format == TEXT:
        return _checked(piece.path, number, line, None, config)
    if not line.strip():
        return dead("empty line")
    try:
        value = json.loads(line)
    except ValueError as error:
        return dead(f"malformed JSON: {error}", line)
    if not isinstance(value, dict):
        return dead(f"a JSON line must be an object, not {type(value).__name__}", line)
    text = value.get(config.text_field)
    if not isinstance(text, str):
        return dead(f"no string field {config.text_field!r}", line)
    return _checked(piece.path, number, text, _id_of(value.get(config.id_field)), config, line)


def _checked(source: str, line: int, text: str, id: Optional[str], config: ScoringConfig,
             content: Optional[str] = None) -> Union[Record, DeadLetter]:
    if not text.strip():
        return DeadLetter(source, line, "empty text", (text if content is None else content)[
            :_CONTENT_CHARS])
    if len(text) > config.max_text_chars:
        return DeadLetter(source, line, f"text of {len(text):,} characters, over the limit of "
                          f"{config.max_text_chars:,} (max_text_chars)", text[:_CONTENT_CHARS])
    return Record(source, line, text, id)


def _id_of(value: Any) -> Optional[str]:
    return None if value is None else value if isinstance(value, str) else json.dumps(value)


def _csv_records(piece: Piece, config: ScoringConfig) -> Iterator[Union[Record, DeadLetter]]:
    """Rows of a CSV file with a header: the text column and, if present, the id column.

    Bytes that are not UTF-8 are kept as surrogates while the file is parsed, so that one bad
    row is refused and the rows after it still read."""
    with open_file(piece.path, compressed=is_compressed(piece.path)) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape",
                                             newline=""))
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield DeadLetter(piece.path, 1, f"malformed CSV header: {error}")
            return
        if config.text_field not in header:
            yield DeadLetter(piece.path, 1, f"the header has no column {config.text_field!r} "
                             f"(columns: {', '.join(header)}); pass --text-field",
                             ",".join(header)[:_CONTENT_CHARS])
            return
        text_at = header.index(config.text_field)
        id_at = header.index(config.id_field) if config.id_field in header else None
        line = reader.line_num + 1
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield DeadLetter(piece.path, line, f"malformed CSV row: {error}")
                line = reader.line_num + 1
                continue
            yield _csv_record(piece.path, line, row, len(header), text_at, id_at, config)
            line = reader.line_num + 1


def _csv_record(source: str, line: int, row: list[str], width: int, text_at: int,
                id_at: Optional[int], config: ScoringConfig) -> Union[Record, DeadLetter]:
    content = ",".join(row)
    if any(_has_undecodable(field) for field in row):
        return DeadLetter(source, line, "not valid UTF-8", _printable(content)[:_CONTENT_CHARS])
    if len(row) != width:
        return DeadLetter(source, line, f"expected {width} fields (the header's), got {len(row)}",
                          content[:_CONTENT_CHARS])
    return _checked(source, line, row[text_at], None if id_at is None else row[id_at], config,
                    content)


def _has_undecodable(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _printable(text: str) -> str:
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def parquet_pieces(path: str) -> list[Piece]:
    """One piece per row group of a Parquet file; ``first_line`` is the group's first row."""
    import pyarrow.parquet as pq

    with open_file(path) as handle:
        metadata = pq.ParquetFile(handle).metadata
    pieces, row = [], 1
    for group in range(metadata.num_row_groups):
        pieces.append(Piece(path, PARQUET, group, group + 1, group, row))
        row += metadata.row_group(group).num_rows
    return pieces


def _parquet_records(piece: Piece, config: ScoringConfig) -> Iterator[Union[Record, DeadLetter]]:
    import pyarrow.parquet as pq

    with open_file(piece.path) as handle:
        parquet = pq.ParquetFile(handle)
        names = parquet.schema_arrow.names
        if config.text_field not in names:
            if piece.index == 0:
                yield DeadLetter(piece.path, 0, f"no column {config.text_field!r} (columns: "
                                 f"{', '.join(names)}); pass --text-field")
            return
        columns = [config.text_field] + ([config.id_field] if config.id_field in names else [])
        table = parquet.read_row_group(piece.start, columns=columns)
    texts = table.column(config.text_field).to_pylist()
    ids = table.column(config.id_field).to_pylist() if len(columns) > 1 else [None] * len(texts)
    for offset, (text, id) in enumerate(zip(texts, ids)):
        row = piece.first_line + offset
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                yield DeadLetter(piece.path, row, "not valid UTF-8",
                                 text.decode("utf-8", "replace")[:_CONTENT_CHARS])
                continue
        if not isinstance(text, str):
            yield DeadLetter(piece.path, row, f"no string in column {config.text_field!r}",
                             repr(text)[:_CONTENT_CHARS])
            continue
        yield _checked(piece.path, row, text, _id_of(id), config)


def open_file(path: str, compressed: bool = False) -> Any:
    """A binary file object for any path Beam's filesystems know (local, gs://, s3://...),
    decompressed by extension when ``compressed``."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    kind = CompressionTypes.AUTO if compressed else CompressionTypes.UNCOMPRESSED
    return FileSystems.open(path, compression_type=kind)
