"""One split file read line by line: each format, and every malformed line named by file and line."""

from __future__ import annotations

import pytest
from support import load_data, synthetic_rows, write_split

from tfemotion.data import DataError
from tfemotion.data.formats import read_rows


def test_read_rows_keeps_a_separator_inside_the_text_and_the_line_numbers(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes("\ufeffa;b;pos\r\n\nc;neg\r\n".encode("utf-8"))
    with pytest.raises(DataError, match=r"train.txt:2: no ';' separator"):
        read_rows(path)
    path.write_bytes("\ufeffa;b;pos\r\nc;neg\r\n".encode("utf-8"))
    rows = read_rows(path)
    assert [(r.text, r.label, r.line) for r in rows] == [("a;b", "pos", 1), ("c", "neg", 2)]


def test_read_rows_of_jsonl_keeps_a_labels_list_as_listed(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text('{"text": "x", "labels": ["joy", 2]}\n', encoding="utf-8")
    (row,) = read_rows(path)
    assert row.listed and row.labels == ("joy", "2") and row.line == 1


def test_load_splits_accepts_val_name_crlf_bom_and_separator_in_text(tmp_path):
    (tmp_path / "train.txt").write_bytes("\ufeffa;b;pos\r\nc;neg\r\n".encode("utf-8"))
    (tmp_path / "val.txt").write_text("d;pos\n", encoding="utf-8")
    splits = load_data(tmp_path)
    assert splits["train"]["text"] == ["a;b", "c"]
    assert splits["train"].features["label"].names == ["neg", "pos"]  # sorted
    assert splits["validation"]["label"] == [1]


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("train.txt", b"ok;a\nno separator here\n", r"train.txt:2: no ';' separator"),
        ("train.txt", b"ok;a\n  ;b\n", r"train.txt:2: empty text"),
        ("train.txt", b"ok;a\nfine;\n", r"train.txt:2: empty label"),
        ("train.txt", b"ok;a\n\nx;b\n", r"train.txt:2: no ';' separator"),
        ("train.txt", b"", r"train.txt: empty file"),
        ("train.txt", b"ok;a\nbad \xff byte;b\n", r"train.txt:2: bytes that are not UTF-8 \(byte 0xff at column 5\)"),
        ("train.csv", b"words,tag\nx,a\n", r"train.csv:1: header must name 'text' and 'label'"),
        ("train.csv", b"text,label\nx,a\ny,b,c\n", r"train.csv:3: expected 2 fields"),
        ("train.csv", b"text,label\n", r"train.csv: empty file"),
        ("train.jsonl", b'{"text": "x", "label": "a"}\n{"text": "y"\n', r"train.jsonl:2: invalid JSON"),
        ("train.jsonl", b'{"text": "x", "label": "a"}\n{"text": 3, "label": "a"}\n', r"train.jsonl:2: 'text' must be a string"),
        ("train.jsonl", b'{"text": "x", "label": "a"}\n["x", "a"]\n', r"train.jsonl:2: expected an object"),
        ("train.jsonl", b'{"text": "x", "label": "a"}\n{"text": "y", "label": 1.5}\n', r"train.jsonl:2: 'label' must be"),
    ],
)
def test_load_splits_bad_input_names_file_and_line(tmp_path, name, content, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_data(tmp_path)


def test_load_splits_keeps_every_row(tmp_path):
    rows = synthetic_rows(500, 3) + [("weird ; text ;; with separators", "joy")]
    write_split(tmp_path / "train.txt", rows, "txt")
    splits = load_data(tmp_path)
    assert splits["train"].num_rows == len(rows)
    assert splits["train"]["text"][-1] == "weird ; text ;; with separators"


@pytest.mark.parametrize("content, message", [
    (b"a;joy,,love\n", r"train.txt:1: an empty label name"),
    (b"a;joy,joy\n", r"train.txt:1: a label given twice"),
    (b"a;joy,love\nb;happy\n", None),
])
def test_bad_multi_label_rows_name_the_line(tmp_path, content, message):
    (tmp_path / "train.txt").write_bytes(content)
    if message is None:  # labels outside an explicit label set are reported like single labels
        with pytest.raises(DataError, match=r"train.txt:2: label 'happy' is not in the label set"):
            load_data(tmp_path, labels=("joy", "love"))
        return
    with pytest.raises(DataError, match=message):
        load_data(tmp_path)
