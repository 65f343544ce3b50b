"""Exploration: summary.json numbers, token statistics, the two plots."""

from __future__ import annotations

import json

from tfemotion.config import EMOTION_LABELS, DataConfig
from tfemotion.data import load_splits, task_of
from tfemotion.data.exploration import explore, split_frames, summarize

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_summarize_counts_rows_labels_and_words(tmp_path):
    (tmp_path / "train.txt").write_text("a b c;joy\nd;sadness\ne f;joy\n")
    (tmp_path / "test.txt").write_text("x y z w;sadness\n")
    summary = summarize(load_splits(DataConfig(source=str(tmp_path))))
    assert summary["label_names"] == ["joy", "sadness"]
    train = summary["splits"]["train"]
    assert train == {"rows": 3, "labels": {"joy": 2, "sadness": 1}, "words_mean": 2.0, "words_max": 3}
    assert summary["splits"]["test"]["labels"] == {"joy": 0, "sadness": 1}


def test_split_frames_has_label_name_and_words(emotion_splits):
    frame = split_frames(emotion_splits, task_of(emotion_splits))
    assert {"split", "text", "label", "label_name", "words"} <= set(frame.columns)
    assert set(frame["label_name"]) <= set(EMOTION_LABELS)
    assert (frame["words"] == frame["text"].str.split().str.len()).all()


def test_explore_writes_summary_with_token_stats_and_pngs(emotion_dir, tiny_bert_dir, tmp_path):
    summary = explore(DataConfig(source=str(emotion_dir)), tmp_path, model=str(tiny_bert_dir),
                      max_length=8)
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == summary
    train = written["splits"]["train"]
    assert train["rows"] == 240 and sum(train["labels"].values()) == 240
    assert train["max_length"] == 8
    assert train["tokens_max"] > 8 and 0 < train["share_longer_than_max"] < 1
    for name in ("class_distribution.png", "words_per_text.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


def _multi_label_folder(folder):
    folder.mkdir(parents=True, exist_ok=True)
    rows = [("happy and scared", ["joy", "fear"]), ("love it", ["love"]),
            ("mad and sad", ["anger", "sadness"]), ("joy joy love", ["joy", "love"]),
            ("nothing much", []), ("wow happy", ["surprise", "joy"])]
    (folder / "train.jsonl").write_text(
        "".join(json.dumps({"text": t, "labels": ls}) + "\n" for t, ls in rows), encoding="utf-8")
    return folder


def test_multi_label_summary_counts_texts_per_label_and_labels_per_text(tmp_path):
    from tfemotion.data.exploration import cooccurrence

    splits = load_splits(DataConfig(source=str(_multi_label_folder(tmp_path)),
                                    allow_no_label=True))
    summary = summarize(splits)
    train = summary["splits"]["train"]
    assert summary["problem_type"] == "multi_label"
    assert train["rows"] == 6  # texts, not (text, label) pairs
    assert train["labels"] == {"sadness": 1, "joy": 3, "love": 2, "anger": 1, "fear": 1,
                               "surprise": 1}
    assert train["labels_per_text"] == {"0": 1, "1": 1, "2": 4}
    assert train["words_mean"] == round(15 / 6, 3)
    counts = cooccurrence(splits["train"], task_of(splits))
    joy, love, fear = (EMOTION_LABELS.index(n) for n in ("joy", "love", "fear"))
    assert counts[joy, joy] == 3 and counts[joy, love] == counts[love, joy] == 1
    assert counts[joy, fear] == 1 and counts[love, fear] == 0


def test_explore_builds_its_data_frame_once(emotion_dir, tmp_path, monkeypatch):
    from tfemotion.data import exploration

    calls = []
    original = exploration.split_frames
    monkeypatch.setattr(exploration, "split_frames",
                        lambda *args: calls.append(1) or original(*args))
    explore(DataConfig(source=str(emotion_dir)), tmp_path)
    assert len(calls) == 1


def test_explore_multi_label_data_writes_labels_per_text_and_cooccurrence_plots(tmp_path):
    out = tmp_path / "explore"
    summary = explore(DataConfig(source=str(_multi_label_folder(tmp_path / "data")),
                                 allow_no_label=True), out)
    assert summary["problem_type"] == "multi_label"
    for name in ("class_distribution.png", "words_per_text.png", "labels_per_text.png",
                 "label_cooccurrence.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG" and (out / name).stat().st_size > 2000
    assert json.loads((out / "summary.json").read_text())["splits"]["train"]["rows"] == 6


def test_single_label_explore_writes_no_multi_label_plots(emotion_dir, tmp_path):
    summary = explore(DataConfig(source=str(emotion_dir)), tmp_path)
    assert summary["problem_type"] == "single_label"
    assert not (tmp_path / "label_cooccurrence.png").exists()
