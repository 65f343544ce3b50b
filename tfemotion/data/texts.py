"""Texts to classify: one per line, from a file or standard input, read lazily.

What ``tfemotion predict`` and ``tfemotion query`` read. Unlike the labelled split files of
``tfemotion.data.formats`` every line is a text, empty ones included, so that the results line
up with the input lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from tfemotion.data.formats import DataError


def read_texts(source: str | Path) -> Iterator[str]:
    """Texts to classify, one per line, from a file or ``"-"`` (standard input), read lazily.

    Line ends (``\\n``, ``\\r\\n``) and a UTF-8 byte order mark are removed; every line is a
    text, empty ones included, so results line up with the input.

    Raises:
        DataError: a line that is not UTF-8 (the message names the file and line).
        FileNotFoundError: no such file.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "texts.txt")
        >>> _ = open(path, "wb").write(b"i feel great\\r\\nso sad\\n")
        >>> list(read_texts(path))
        ['i feel great', 'so sad']
    """
    import sys

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
            raise DataError(f"{name}:{number}: bytes that are not UTF-8 (byte 0x"
                            f"{raw[error.start]:02x} at column {error.start + 1}). Re-save the "
                            f"file as UTF-8.") from None
        yield text.rstrip("\n").removesuffix("\r")
