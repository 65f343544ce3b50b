"""Reading one split file of labelled texts: ``.txt``, ``.csv`` or ``.jsonl``, checked line by line.

``.txt`` lines are ``text;label`` (the book's raw format; the text may hold the separator),
``.csv`` has a ``text,label`` header, ``.jsonl`` holds one ``{"text", "label"}`` object per line
(or a ``"labels"`` list for multi-label data). Every malformed line stops the reading with a
``DataError`` naming the file and the line; nothing is dropped silently. Labels stay as written:
``tfemotion.data.loading`` maps them to ids once the label set is known.

Example:
    >>> import os, tempfile
    >>> path = Path(tempfile.mkdtemp(), "train.txt")
    >>> _ = path.write_text("so happy; really;joy\\n", encoding="utf-8")
    >>> read_rows(path)[0].text, read_rows(path)[0].label
    ('so happy; really', 'joy')
    >>> _ = path.write_text("no separator here\\n", encoding="utf-8")
    >>> read_rows(path)
    Traceback (most recent call last):
    ...
    tfemotion.data.formats.DataError: ...train.txt:1: no ';' separator; expected 'text;label'. Received: line='no separator here'
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

FORMATS = (".txt", ".csv", ".jsonl")


class DataError(ValueError):
    """Bad input data; the message names the file and line at fault."""


@dataclass(frozen=True)
class Row:
    """One labelled text as read from a file, before its labels become ids."""

    text: str
    label: str  # as written in the file; mapped to ids once the label names are known
    file: str
    line: int
    listed: bool = False  # written as a list (a jsonl 'labels' array): multi-label for sure
    labels: tuple[str, ...] = ()  # the labels of a multi-label row


def read_rows(path: Path, separator: str = ";") -> list[Row]:
    """Read and check one split file; raise ``DataError`` naming the file and line at fault.

    Example:
        >>> rows = read_rows(Path(data_dir) / "train.txt")  # text;label lines
        >>> len(rows), rows[0].line, rows[0].label in {"sadness", "joy", "fear"}
        (240, 1, True)
    """
    text = read_utf8(path)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        rows = list(_parse_txt(text, str(path), separator))
    elif suffix == ".csv":
        rows = list(_parse_csv(text, str(path)))
    elif suffix == ".jsonl":
        rows = list(_parse_jsonl(text, str(path)))
    else:
        raise DataError(f"{path}: unknown format {suffix!r}; expected one of {FORMATS}")
    if not rows:
        raise DataError(f"{path}: empty file (no examples)")
    return rows


def read_utf8(path: Path) -> str:
    """The file's text (a UTF-8 byte order mark and CRLF line ends removed); ``DataError``
    naming the line and column of the first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        raise DataError(
            f"{path}:{line}: bytes that are not UTF-8 (byte 0x{data[error.start]:02x} at column "
            f"{column}). Re-save the file as UTF-8."
        ) from None
    return text.replace("\r\n", "\n")


def _lines(text: str) -> Iterator[tuple[int, str]]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    yield from enumerate(lines, start=1)


def _check_row(text: str, label: str, file: str, line: int) -> Row:
    if not text.strip():
        raise DataError(f"{file}:{line}: empty text")
    return Row(text, label.strip(), file, line)  # an empty label is checked by problem type


def _parse_txt(text: str, file: str, separator: str) -> Iterator[Row]:
    for number, line in _lines(text):
        if separator not in line:
            shown = line if len(line) <= 80 else line[:77] + "..."
            raise DataError(
                f"{file}:{number}: no {separator!r} separator; expected 'text{separator}label'. "
                f"Received: line={shown!r}"
            )
        body, label = line.rsplit(separator, 1)  # texts may contain the separator
        yield _check_row(body, label, file, number)


def _parse_csv(text: str, file: str) -> Iterator[Row]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return
    columns = [c.strip() for c in header]
    if "text" not in columns or "label" not in columns:
        raise DataError(f"{file}:1: header must name 'text' and 'label' columns. Received: header={header}")
    text_at, label_at = columns.index("text"), columns.index("label")
    for fields in reader:
        number = reader.line_num
        if not fields:
            raise DataError(f"{file}:{number}: empty line")
        if len(fields) != len(columns):
            raise DataError(
                f"{file}:{number}: expected {len(columns)} fields like the header, got {len(fields)}"
            )
        yield _check_row(fields[text_at], fields[label_at], file, number)


def _parse_jsonl(text: str, file: str) -> Iterator[Row]:
    for number, line in _lines(text):
        if not line.strip():
            raise DataError(f"{file}:{number}: empty line")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{file}:{number}: invalid JSON ({error.msg})") from None
        if not isinstance(record, dict) or "text" not in record or not (
                "label" in record or "labels" in record):
            raise DataError(f"{file}:{number}: expected an object with 'text' and 'label' (or a "
                            "'labels' list for multi-label data)")
        value = record["text"]
        if not isinstance(value, str):
            raise DataError(f"{file}:{number}: 'text' must be a string. Received: text={value!r}")
        if "labels" in record:
            yield listed_row(value, record["labels"], file, number)
            continue
        label = record["label"]
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise DataError(f"{file}:{number}: 'label' must be a name or an integer id. "
                            f"Received: label={label!r}")
        yield _check_row(value, str(label), file, number)


def listed_row(text: str, labels: Any, file: str, line: int) -> Row:
    if not isinstance(labels, list) or not all(
            isinstance(x, (str, int)) and not isinstance(x, bool) for x in labels):
        raise DataError(f"{file}:{line}: 'labels' must be a list of names or integer ids. "
                        f"Received: labels={labels!r}")
    if not text.strip():
        raise DataError(f"{file}:{line}: empty text")
    return Row(text, ",".join(map(str, labels)), file, line, listed=True,
                labels=tuple(str(x).strip() for x in labels))

