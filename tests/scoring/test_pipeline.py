"""Bulk scoring end to end on Beam's local runner, against ``predict`` on the same export.

A stand-in export (``support.write_scoring_export``: keyword scores, single- and multi-label, and
a text that fails its batch) keeps these tests quick; ``test_score_cli_*`` runs the session's
real export with the default local runner (two worker processes).
"""

from __future__ import annotations

import glob
import json

import numpy as np
import pytest

pytest.importorskip("apache_beam", reason="the beam extra: pip install 'tfemotion[beam]'")

import apache_beam as beam  # noqa: E402

from support import EMOTIONS, FAIL_MARK, write_scoring_export  # noqa: E402
from tfemotion.config import ScoringConfig  # noqa: E402
from tfemotion.prediction import predict  # noqa: E402
from tfemotion.scoring import ScoreTexts, score  # noqa: E402

ONE_WORKER = ["--direct_num_workers=1"]  # in this process: quick; the CLI test runs two
TEXTS = ["i am so happy and glad", "sad gloomy day", "i adore you", "so mad at this",
         "a scary dark night", "what a surprise", "nothing special here", "happy but sad"]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    base = tmp_path_factory.mktemp("scoring-exports")
    return {"single": write_scoring_export(base / "single" / "1"),
            "multi": write_scoring_export(base / "multi" / "1", multi_label=True)}


def read_rows(pattern, fmt="jsonl"):
    rows = []
    for path in sorted(glob.glob(pattern)):
        if fmt == "jsonl":
            with open(path, encoding="utf-8") as handle:
                rows += [json.loads(line) for line in handle]
        elif fmt == "csv":
            import pandas as pd

            rows += pd.read_csv(path, keep_default_na=False, dtype={"id": str}).to_dict("records")
        else:
            import pandas as pd

            rows += pd.read_parquet(path).to_dict("records")
    return sorted(rows, key=lambda row: (row["source"], row["line"]))


def scores_of(row):
    if "scores" in row:
        return [row["scores"][name] for name in EMOTIONS]
    return [row[f"score_{name}"] for name in EMOTIONS]


def write_inputs(folder, fmt):
    if fmt == "text":
        path = folder / "in.txt"
        path.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    elif fmt == "jsonl":
        path = folder / "in.jsonl"
        path.write_text("\n".join(json.dumps({"id": f"t{i}", "text": t})
                                  for i, t in enumerate(TEXTS)) + "\n", encoding="utf-8")
    elif fmt == "csv":
        import pandas as pd

        path = folder / "in.csv"
        pd.DataFrame({"id": [f"t{i}" for i in range(len(TEXTS))], "text": TEXTS}).to_csv(
            path, index=False)
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / "in.parquet"
        pq.write_table(pa.table({"id": [f"t{i}" for i in range(len(TEXTS))], "text": TEXTS}),
                       path, row_group_size=3)
    return path


FORMATS = [("text", "jsonl"), ("jsonl", "csv"), ("csv", "parquet"), ("parquet", "jsonl")]


@pytest.mark.parametrize("kind, fmt, out_fmt", [
    # make check runs one of the eight; make test all of them
    pytest.param(kind, fmt, out_fmt, marks=[] if (kind, fmt) == ("single", "text") else [
        pytest.mark.integration])
    for kind in ("single", "multi") for fmt, out_fmt in FORMATS])
def test_every_format_scores_as_predict_does(tmp_path, exports, kind, fmt, out_fmt):
    path = write_inputs(tmp_path, fmt)
    report = score(str(exports[kind]), [str(path)], str(tmp_path / "out" / "s"),
                   ScoringConfig(output_format=out_fmt), beam_args=ONE_WORKER)
    rows = read_rows(str(tmp_path / "out" / f"s-0*.{out_fmt}"), out_fmt)
    expected = predict(str(exports[kind]), TEXTS)
    assert (report.read, report.scored, report.dead_lettered) == (8, 8, 0)
    first = 2 if fmt == "csv" else 1  # a CSV's first row is its line 2, after the header
    assert [row["line"] for row in rows] == list(range(first, first + 8))
    for row, want in zip(rows, expected):
        np.testing.assert_allclose(scores_of(row), [want["scores"][n] for n in EMOTIONS],
                                   atol=1e-6)
        assert row["label"] == EMOTIONS[int(np.argmax(scores_of(row)))]
        assert row["label_id"] == EMOTIONS.index(row["label"])
        if kind == "multi":
            labels = row["labels"]
            labels = labels.split("|") if isinstance(labels, str) else list(labels)
            assert [label for label in labels if label] == want["labels"]
        assert row["id"] == (None if fmt == "text" else f"t{row['line'] - first}")


def test_bad_records_are_dead_lettered_with_their_line_and_the_rest_scored(tmp_path, exports):
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps({"id": 1, "text": "so happy"}), b"\xff\xfe not utf-8",
             "", json.dumps({"id": 3, "text": "x" * 101}), "{not json",
             json.dumps({"id": 4, "text": f"this one {FAIL_MARK}s the batch"}),
             json.dumps({"id": 5, "text": "sad gloomy day"}), json.dumps({"id": 6})]
    path.write_bytes(b"\n".join(line if isinstance(line, bytes) else line.encode()
                                for line in lines) + b"\n")
    csv_path = tmp_path / "rows.csv"
    csv_path.write_text("id,text\n7,fine text\n8\n9,happy again\n", encoding="utf-8")
    report = score(str(exports["single"]), [str(path), str(csv_path)], str(tmp_path / "o" / "s"),
                   ScoringConfig(max_text_chars=100, max_batch_size=8, min_batch_size=8),
                   beam_args=ONE_WORKER)
    dead = read_rows(str(tmp_path / "o" / "s-dead-letter-*.jsonl"))
    scored = read_rows(str(tmp_path / "o" / "s-0*.jsonl"))
    assert [(row["source"].rsplit("/", 1)[-1], row["line"]) for row in dead] == [
        ("mixed.jsonl", 2), ("mixed.jsonl", 3), ("mixed.jsonl", 4), ("mixed.jsonl", 5),
        ("mixed.jsonl", 6), ("mixed.jsonl", 8), ("rows.csv", 3)]
    reasons = [row["reason"] for row in dead]
    assert reasons[0].startswith("not valid UTF-8") and reasons[1] == "empty line"
    assert reasons[2].startswith("text of 101 characters, over the limit of 100")
    assert reasons[3].startswith("malformed JSON")
    assert reasons[4].startswith("the export failed on this text: InvalidArgumentError")
    assert reasons[6] == "expected 2 fields (the header's), got 1"
    # the failed text's batch neighbours were scored, one by one
    assert [(row["source"].rsplit("/", 1)[-1], row["line"]) for row in scored] == [
        ("mixed.jsonl", 1), ("mixed.jsonl", 7), ("rows.csv", 2), ("rows.csv", 4)]
    assert (report.read, report.scored, report.dead_lettered) == (11, 4, 7)
    counts = json.loads((tmp_path / "o" / "s-counts.json").read_text())
    assert counts["read"] == counts["scored"] + counts["dead_lettered"] == 11
    assert counts["seconds"] > 0


@pytest.mark.integration  # the pieces' line numbers are unit-tested in test_sources.py
def test_text_files_in_many_pieces_keep_their_line_numbers(tmp_path, exports):
    texts = [f"{TEXTS[i % len(TEXTS)]} number {i}" for i in range(300)]
    texts[150] = ""
    path = tmp_path / "many.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    report = score(str(exports["single"]), [str(path)], str(tmp_path / "o" / "s"),
                   ScoringConfig(piece_mb=0.001), beam_args=ONE_WORKER)
    rows = read_rows(str(tmp_path / "o" / "s-0*.jsonl"))
    assert (report.read, report.scored, report.dead_lettered) == (300, 299, 1)
    assert [row["line"] for row in rows] == [n for n in range(1, 301) if n != 151]
    expected = predict(str(exports["single"]), texts[:5])
    for row, want in zip(rows, expected):
        np.testing.assert_allclose(scores_of(row), list(want["scores"].values()), atol=1e-6)


def test_an_output_prefix_with_files_of_an_earlier_run_is_refused(tmp_path, exports):
    path = write_inputs(tmp_path, "text")
    out = str(tmp_path / "o" / "s")
    score(str(exports["single"]), [str(path)], out, beam_args=ONE_WORKER)
    with pytest.raises(FileExistsError, match="files of an earlier run are there"):
        score(str(exports["single"]), [str(path)], out, beam_args=ONE_WORKER)


def test_an_input_that_matches_nothing_and_a_folder_that_is_no_export_are_named(tmp_path,
                                                                                exports):
    with pytest.raises(FileNotFoundError, match=r"nothing-\*\.txt: no such file"):
        score(str(exports["single"]), [str(tmp_path / "nothing-*.txt")], str(tmp_path / "o"))
    with pytest.raises(FileNotFoundError, match="is not an export: expected saved_model.pb"):
        score(str(tmp_path), [str(tmp_path)], str(tmp_path / "o"))


def test_score_texts_works_in_a_pipeline_of_ones_own(exports):
    from apache_beam.testing.util import assert_that, equal_to

    expected = {r["text"]: r["label"] for r in predict(str(exports["single"]), TEXTS)}
    with beam.Pipeline() as pipeline:
        scored, failed = (pipeline
                          | beam.Create([(i, t) for i, t in enumerate(TEXTS)] + [(99, FAIL_MARK)])
                          | ScoreTexts(str(exports["single"].parent)))  # the model folder
        labels = scored | beam.MapTuple(lambda key, result: (key, result["label"]))
        assert_that(labels, equal_to([(i, expected[t]) for i, t in enumerate(TEXTS)]))
        assert_that(failed | beam.MapTuple(lambda key, reason: key), equal_to([99]),
                    label="failed")


@pytest.mark.integration
def test_score_cli_runs_the_real_export_on_two_local_workers(tmp_path, verified_export, capsys):
    from tfemotion.cli import main

    texts = [f"{TEXTS[i % len(TEXTS)]} {i}" for i in range(200)]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    out = tmp_path / "out" / "s"
    assert main(["score", "--model", verified_export["path"], "--input", str(path),
                 "--output", str(out), "--piece-mb", "0.001", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["read"], report["scored"], report["dead_lettered"]) == (200, 200, 0)
    rows = read_rows(str(out) + "-0*.jsonl")
    expected = predict(verified_export["path"], texts)
    labels = list(expected[0]["scores"])
    assert [row["line"] for row in rows] == list(range(1, 201))
    for row, want in zip(rows, expected):
        np.testing.assert_allclose([row["scores"][n] for n in labels],
                                   [want["scores"][n] for n in labels], atol=1e-6)
