"""Input records of bulk scoring: formats, pieces, line numbers and the records refused."""

from __future__ import annotations

import json

import pytest

from tfemotion.config import ScoringConfig
from tfemotion.scoring.sources import (CSV, JSONL, PARQUET, TEXT, DeadLetter, Piece, Record,
                                       count_newlines, first_lines, input_format, parquet_pieces,
                                       plan_pieces, read_piece)


def read_all(path, fmt, piece_bytes=1 << 20, config=ScoringConfig()):
    """Every record of a file read piece by piece, as the pipeline reads it."""
    size = path.stat().st_size
    pieces = parquet_pieces(str(path)) if fmt == PARQUET else plan_pieces(str(path), size, fmt,
                                                                         piece_bytes)
    newlines = {(p.path, p.index): count_newlines(p) for p in pieces if p.end > 0}
    return [r for p in pieces for r in read_piece(p, config, first_lines(newlines, p))]


@pytest.mark.parametrize("name, expected", [
    ("a.txt", TEXT), ("a.TXT.gz", TEXT), ("b.jsonl", JSONL), ("b.ndjson.bz2", JSONL),
    ("gs://x/c.csv", CSV), ("d.parquet", PARQUET)])
def test_the_format_is_told_from_the_extension(name, expected):
    assert input_format(name) == expected


def test_an_unknown_extension_names_the_file_and_the_flag():
    with pytest.raises(ValueError, match=r"posts\.tsv.*'\.tsv'.*--input-format"):
        input_format("posts.tsv")
    assert input_format("posts.tsv", "text") == TEXT


@pytest.mark.parametrize("piece_bytes", [1, 2, 3, 5, 7, 11, 64, 1 << 20])
def test_pieces_of_any_size_read_every_line_once_with_its_number(tmp_path, piece_bytes):
    lines = ["i feel fine", "a", "so happy today", "é ü unicode", "x" * 30, "last"]
    path = tmp_path / "t.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    records = read_all(path, TEXT, piece_bytes)
    assert [(r.line, r.text) for r in records] == list(enumerate(lines, start=1))


def test_a_last_line_without_a_line_end_and_crlf_line_ends_read_as_texts(tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"\xef\xbb\xbfone\r\ntwo\r\nthree")
    assert [(r.line, r.text) for r in read_all(path, TEXT, 4)] == [
        (1, "one"), (2, "two"), (3, "three")]


def test_bad_lines_become_dead_letters_with_their_line_and_reason(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"good one\n\n   \nbad \xff byte\n" + b"y" * 50 + b"\nok\n")
    records = read_all(path, TEXT, 8, ScoringConfig(max_text_chars=40))
    assert [(type(r).__name__, r.line) for r in records] == [
        ("Record", 1), ("DeadLetter", 2), ("DeadLetter", 3), ("DeadLetter", 4),
        ("DeadLetter", 5), ("Record", 6)]
    reasons = [r.reason for r in records if isinstance(r, DeadLetter)]
    assert reasons[:2] == ["empty text", "empty text"]
    assert reasons[2].startswith("not valid UTF-8 (byte 0xff at column 5)")
    assert reasons[3] == "text of 50 characters, over the limit of 40 (max_text_chars)"


def test_a_line_over_the_byte_limit_is_refused_without_being_held(tmp_path):
    config = ScoringConfig(max_text_chars=10)
    path = tmp_path / "long.txt"
    path.write_bytes(b"short\n" + b"z" * 200_000 + b"\nafter\n")
    records = read_all(path, TEXT, config=config)
    assert [(type(r).__name__, r.line) for r in records] == [
        ("Record", 1), ("DeadLetter", 2), ("Record", 3)]
    assert records[1].reason == "line over 65,596 bytes"


def test_jsonl_records_carry_their_id_and_refuse_what_is_not_a_text(tmp_path):
    path = tmp_path / "b.jsonl"
    lines = [{"id": 7, "text": "i feel great"}, {"id": "a-1", "body": "x"}, "not json",
             [1, 2], {"text": 5}, {"text": "no id"}, {"id": None, "text": ""}]
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line)
                              for line in lines) + "\n", encoding="utf-8")
    records = read_all(path, JSONL, 16)
    assert records[0] == Record(str(path), 1, "i feel great", "7")
    assert records[5] == Record(str(path), 6, "no id", None)
    dead = {r.line: r.reason for r in records if isinstance(r, DeadLetter)}
    assert dead[2] == "no string field 'text'"
    assert dead[3].startswith("malformed JSON: Expecting value")
    assert dead[4] == "a JSON line must be an object, not list"
    assert dead[5] == "no string field 'text'"
    assert dead[7] == "empty text"


def test_csv_rows_keep_the_line_they_start_on_across_quoted_line_breaks(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b'id,text,extra\n1,hello there,x\n2,"two\nlines",y\n3,missing\n'
                     b'4,bad \xff bytes,z\n5,fine,z\n')
    records = read_all(path, CSV)
    assert [(type(r).__name__, r.line) for r in records] == [
        ("Record", 2), ("Record", 3), ("DeadLetter", 5), ("DeadLetter", 6), ("Record", 7)]
    assert records[1].text == "two\nlines" and records[1].id == "2"
    assert records[2].reason == "expected 3 fields (the header's), got 2"
    assert records[3].reason == "not valid UTF-8"


def test_a_csv_without_the_text_column_is_one_dead_letter_that_says_so(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,body\n1,hello\n", encoding="utf-8")
    [dead] = read_all(path, CSV)
    assert "no column 'text' (columns: id, body); pass --text-field" in dead.reason


def test_parquet_rows_are_numbered_across_row_groups(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    table = pa.table({"id": list(range(7)), "text": ["a", "b", None, "d", "", "f", "g"]})
    pq.write_table(table, path, row_group_size=3)
    assert len(parquet_pieces(str(path))) == 3
    records = read_all(path, PARQUET)
    assert [(type(r).__name__, r.line) for r in records] == [
        ("Record", 1), ("Record", 2), ("DeadLetter", 3), ("Record", 4), ("DeadLetter", 5),
        ("Record", 6), ("Record", 7)]
    assert records[3] == Record(str(path), 4, "d", "3")


def test_the_first_line_of_a_piece_counts_the_line_breaks_before_it():
    piece = Piece("a.txt", TEXT, 20, 30, index=2, first_line=0)
    assert first_lines({("a.txt", 0): 4, ("a.txt", 1): 0, ("b.txt", 0): 9}, piece) == 5
