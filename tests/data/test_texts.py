"""Texts to classify, one per line, read lazily."""

from __future__ import annotations

import pytest

from tfemotion.data import DataError


def test_read_texts_streams_lines_and_names_the_line_that_is_not_utf8(tmp_path):
    from tfemotion.data import read_texts

    path = tmp_path / "texts.txt"
    path.write_bytes(b"\xef\xbb\xbffirst\r\n\nthird;with;semicolons\n\xff bad\n")
    texts = read_texts(path)
    assert [next(texts), next(texts), next(texts)] == ["first", "", "third;with;semicolons"]
    with pytest.raises(DataError, match=r"texts.txt:4: bytes that are not UTF-8 \(byte 0xff"):
        next(texts)
    with pytest.raises(FileNotFoundError, match="no such file of texts"):
        list(read_texts(tmp_path / "missing.txt"))
