"""Exploration: summary.json numbers, token statistics, the two plots."""

from __future__ import annotations

import json

from tfemotion.config import EMOTION_LABELS, DataConfig
from tfemotion.data import load_splits
from tfemotion.exploration import explore, split_frames, summarize

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_summarize_counts_rows_labels_and_words(tmp_path):
    (tmp_path / "train.txt").write_text("a b c;joy\nd;sadness\ne f;joy\n")
    (tmp_path / "test.txt").write_text("x y z w;sadness\n")
    summary = summarize(load_splits(DataConfig(source=str(tmp_path))))
    assert summary["label_names"] == ["joy", "sadness"]
    train = summary["splits"]["train"]
    assert train == {"rows": 3, "labels": {"joy": 2, "sadness": 1}, "words_mean": 2.0, "words_max": 3}
    assert summary["splits"]["test"]["labels"] == {"joy": 0, "sadness": 1}


def test_split_frames_has_label_name_and_words(emotion_dir):
    frame = split_frames(load_splits(DataConfig(source=str(emotion_dir))))
    assert {"split", "text", "label", "label_name", "words"} <= set(frame.columns)
    assert set(frame["label_name"]) <= set(EMOTION_LABELS)
    assert (frame["words"] == frame["text"].str.split().str.len()).all()


def test_explore_writes_summary_with_token_stats_and_pngs(emotion_dir, tiny_bert_dir, tmp_path):
    summary = explore(DataConfig(source=str(emotion_dir)), tmp_path, model=str(tiny_bert_dir),
                      max_length=8)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == summary
    train = written["splits"]["train"]
    assert train["rows"] == 120 and sum(train["labels"].values()) == 120
    assert train["max_length"] == 8
    assert train["tokens_max"] > 8 and 0 < train["share_longer_than_max"] < 1
    for name in ("class_distribution.png", "words_per_text.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000
