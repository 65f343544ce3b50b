"""load_splits: local files, URLs and (offline) hub ids; label order; problem types; every bad-input error."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import pytest
from support import load_data, synthetic_rows, write_dataset, write_split

from tfemotion.checkpoints import HubUnreachableError
from tfemotion.config import EMOTION_LABELS, DataConfig
from tfemotion.data import DataError, load_splits, task_of


@pytest.mark.parametrize("fmt", ["txt", "csv", "jsonl"])
def test_load_splits_reads_each_format_with_emotion_order(tmp_path, fmt):
    folder = write_dataset(tmp_path, fmt, sizes=(60, 20, 20))
    splits = load_data(folder)
    assert sorted(splits) == ["test", "train", "validation"]
    assert splits["train"].features["label"].names == list(EMOTION_LABELS)
    expected = synthetic_rows(60, 0)
    first = splits["train"][0]
    assert first["text"] == expected[0][0]
    assert EMOTION_LABELS[first["label"]] == expected[0][1]
    assert splits["validation"].num_rows == 20


def test_load_splits_single_file_becomes_train(tmp_path):
    path = write_split(tmp_path / "tweets.jsonl", [("x", "a"), ("y", "b")], "jsonl")
    splits = load_data(path)
    assert list(splits) == ["train"]
    assert splits["train"]["text"] == ["x", "y"]


def test_load_splits_label_order_explicit_then_labels_txt(tmp_path):
    write_split(tmp_path / "train.txt", [("x", "b"), ("y", "a"), ("z", "c")], "txt")
    assert load_data(tmp_path).get("train").features["label"].names == ["a", "b", "c"]
    (tmp_path / "labels.txt").write_text("c\nb\na\n")
    assert load_data(tmp_path)["train"].features["label"].names == ["c", "b", "a"]
    assert load_data(tmp_path)["train"]["label"] == [1, 2, 0]
    explicit = load_data(tmp_path, labels=("b", "c", "a"))
    assert explicit["train"].features["label"].names == ["b", "c", "a"]
    assert explicit["train"]["label"] == [0, 2, 1]


def test_load_splits_integer_ids_with_and_without_names(tmp_path):
    write_split(tmp_path / "train.jsonl", [("x", 0), ("y", 2), ("z", 1)], "jsonl")
    assert load_data(tmp_path)["train"].features["label"].names == ["0", "1", "2"]
    named = load_data(tmp_path, labels=("neg", "neu", "pos"))
    assert named["train"]["label"] == [0, 2, 1]
    with pytest.raises(DataError, match=r"train.jsonl:2: label '2' is not in the label set"):
        load_data(tmp_path, labels=("neg", "pos"))


def test_load_splits_unseen_validation_label_names_file_and_line(tmp_path):
    write_split(tmp_path / "train.txt", [("x", "a"), ("y", "b")], "txt")
    write_split(tmp_path / "validation.txt", [("x", "a"), ("y", "zzz")], "txt")
    with pytest.raises(DataError, match=r"validation.txt:2: label 'zzz' is not in the label set \['a', 'b'\]"):
        load_data(tmp_path)


def test_load_splits_folder_errors(tmp_path):
    (tmp_path / "notes.md").write_text("hi")
    with pytest.raises(DataError, match=r"no train file.*notes.md"):
        load_data(tmp_path)
    write_split(tmp_path / "train.txt", [("x", "a")], "txt")
    write_split(tmp_path / "train.csv", [("x", "a")], "csv")
    with pytest.raises(DataError, match=r"more than one file for the train split"):
        load_data(tmp_path)


@pytest.fixture
def http_server(tmp_path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_load_splits_from_url(http_server):
    folder, base = http_server
    write_split(folder / "tweets.csv", [("hello there", "joy"), ("oh no", "sadness")], "csv")
    splits = load_data(f"{base}/tweets.csv")
    assert splits["train"]["text"] == ["hello there", "oh no"]
    assert splits["train"].features["label"].names == ["joy", "sadness"]


def test_load_splits_url_errors_name_the_url(http_server):
    folder, base = http_server
    with pytest.raises(DataError, match=r"missing.txt: download failed"):
        load_data(f"{base}/missing.txt")
    with pytest.raises(DataError, match=r"must end in one of"):
        load_data(f"{base}/data.parquet")


def test_load_splits_hub_id_offline_fails_fast_with_advice(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    import datasets

    # Failing fast: the hub's own retries (~25 s without network) are never entered.
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("went to the hub"))
    with pytest.raises(HubUnreachableError, match=r"--data PATH.*make run DATA=PATH"):
        load_data("dair-ai/emotion")


def test_save_splits_writes_what_load_splits_reads_back(tmp_path):
    from tfemotion.data import save_splits

    original = load_splits(DataConfig(source=str(write_dataset(tmp_path / "in", "jsonl"))))
    relabelled = load_splits(DataConfig(source=str(tmp_path / "in"),
                                        labels=("surprise", "fear", "anger", "love", "joy",
                                                "sadness")))
    files = save_splits(relabelled, tmp_path / "out")
    assert sorted(files) == ["labels", "test", "train", "validation"]
    again = load_splits(DataConfig(source=str(tmp_path / "out")))
    assert again["train"].features["label"].names == list(relabelled["train"].features["label"].names)
    for split in original:
        assert again[split]["text"] == relabelled[split]["text"]
        assert again[split]["label"] == relabelled[split]["label"]


MULTI_ROWS = [("so happy and a bit scared", ["joy", "fear"]), ("i adore you", ["love"]),
              ("angry and sad", ["anger", "sadness"]), ("what a shock", ["surprise"])]


def _write_multi(folder, fmt: str, rows=MULTI_ROWS):
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        content = "".join(json.dumps({"text": t, "labels": ls}) + "\n" for t, ls in rows)
    elif fmt == "csv":
        content = "text,label\n" + "".join(f'"{t}","{",".join(ls)}"\n' for t, ls in rows)
    else:
        content = "".join(f"{t};{','.join(ls)}\n" for t, ls in rows)
    (folder / f"train.{fmt}").write_text(content, encoding="utf-8")
    return folder


@pytest.mark.parametrize("fmt", ["txt", "csv", "jsonl"])
def test_multi_label_data_loads_as_lists_of_label_ids_in_each_format(tmp_path, fmt):
    from datasets import ClassLabel, Sequence

    from tfemotion.data import label_names

    splits = load_data(_write_multi(tmp_path, fmt))
    feature = splits["train"].features["label"]
    assert isinstance(feature, Sequence) and isinstance(feature.feature, ClassLabel)
    assert task_of(splits).multi_label and label_names(splits) == list(EMOTION_LABELS)
    assert splits["train"]["label"] == [[1, 4], [2], [3, 0], [5]]  # emotion order, as written


def test_single_label_data_stays_single_label_unless_forced(tmp_path):
    write_split(tmp_path / "train.txt", [("x", "joy"), ("y", "sadness")], "txt")
    assert not task_of(load_data(tmp_path)).multi_label
    forced = load_data(tmp_path, problem_type="multi_label")
    assert task_of(forced).multi_label and forced["train"]["label"] == [[0], [1]]  # joy, sadness


def test_a_data_set_that_mixes_single_and_multi_label_rows_names_both_lines(tmp_path):
    (tmp_path / "train.jsonl").write_text(
        '{"text": "a", "labels": ["joy"]}\n{"text": "b", "label": "joy"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"train.jsonl:2: a single 'label' here, but a 'labels' "
                                        r"list at .*train.jsonl:1"):
        load_data(tmp_path)
    (tmp_path / "train.jsonl").write_text('{"text": "a", "labels": ["joy", "love"]}\n')
    with pytest.raises(DataError, match=r"train.jsonl:1: a 'labels' list, but problem_type"):
        load_data(tmp_path, problem_type="single_label")


def test_texts_without_labels_need_allow_no_label(tmp_path):
    (tmp_path / "train.txt").write_text("a;joy,love\nb;\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train.txt:2: no label.*allow_no_label"):
        load_data(tmp_path)
    assert load_data(tmp_path, allow_no_label=True)["train"]["label"] == [[0, 1], []]
    (tmp_path / "train.txt").unlink()
    (tmp_path / "train.jsonl").write_text('{"text": "a", "labels": []}\n'
                                          '{"text": "b", "labels": ["x", "y"]}\n')
    with pytest.raises(DataError, match=r"train.jsonl:1: no label"):
        load_data(tmp_path)
    assert load_data(tmp_path, allow_no_label=True)["train"]["label"] == [[], [0, 1]]


def test_the_label_separator_is_a_setting(tmp_path):
    (tmp_path / "train.txt").write_text("a, b;joy|love\nc;fear\n", encoding="utf-8")
    splits = load_data(tmp_path, label_separator="|")
    assert splits["train"]["text"] == ["a, b", "c"]
    assert splits["train"]["label"] == [[1, 2], [0]]  # sorted names: fear, joy, love
    with pytest.raises(ValueError, match="label_separator must be one character"):
        DataConfig(source="x", label_separator="||")


def test_a_comma_text_separator_still_reads_single_label_data(tmp_path):
    (tmp_path / "train.txt").write_text("hello, world,joy\nbye,sadness\n", encoding="utf-8")
    splits = load_data(tmp_path, separator=",")
    assert splits["train"]["text"] == ["hello, world", "bye"]
    assert splits["train"]["label"] == [0, 1]  # joy, sadness: single-label
    with pytest.raises(DataError, match="need a label separator other than the text separator"):
        load_data(tmp_path, separator=",", problem_type="multi_label")


def test_only_txt_and_csv_labels_are_split_on_the_label_separator(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"text": "a", "label": "Clothing, Shoes"}\n'
                                          '{"text": "b", "label": "Tools"}\n')
    splits = load_data(tmp_path)
    assert not task_of(splits).multi_label
    assert splits["train"].features["label"].names == ["Clothing, Shoes", "Tools"]
    forced = load_data(tmp_path, problem_type="multi_label")
    assert forced["train"]["label"] == [[0], [1]]


def test_save_splits_round_trips_multi_label_data(tmp_path):
    from tfemotion.data import save_splits

    original = load_data(_write_multi(tmp_path / "in", "jsonl"))
    save_splits(original, tmp_path / "out")
    again = load_data(tmp_path / "out")
    assert again["train"]["label"] == original["train"]["label"]


def test_hub_multi_label_column_loads_as_it_is(monkeypatch):
    import datasets

    names = ["admiration", "anger", "joy", "neutral"]
    features = datasets.Features({"text": datasets.Value("string"), "id": datasets.Value("string"),
                                  "labels": datasets.Sequence(datasets.ClassLabel(names=names))})
    hub = datasets.DatasetDict({split: datasets.Dataset.from_dict(
        {"text": ["wow", "grr", "meh"], "id": ["1", "2", "3"], "labels": [[0, 2], [1], labels]},
        features=features) for split, labels in (("train", [3]), ("validation", []))})
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: hub)
    monkeypatch.setattr("tfemotion.data.loading.require_hub", lambda *args: None)
    splits = load_data("google-research-datasets/go_emotions", hub_config="simplified",
                  allow_no_label=True)
    assert splits["train"]["label"] == [[0, 2], [1], [3]]
    assert splits["train"].features["label"].feature.names == names
    with pytest.raises(DataError, match=r"validation example 3 carries no label"):
        load_data("google-research-datasets/go_emotions")


def test_a_hub_single_label_set_forced_multi_label_keeps_its_names(monkeypatch):
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["sadness", "joy", "love"])})
    hub = datasets.DatasetDict({"train": datasets.Dataset.from_dict(
        {"text": ["a", "b"], "label": [2, 0]}, features=features)})
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: hub)
    monkeypatch.setattr("tfemotion.data.loading.require_hub", lambda *args: None)
    splits = load_data("dair-ai/emotion", problem_type="multi_label")
    assert splits["train"]["label"] == [[2], [0]]
    assert splits["train"].features["label"].feature.names == ["sadness", "joy", "love"]


@pytest.mark.parametrize("fmt, first_line", [("txt", 1), ("csv", 2), ("jsonl", 1)])
def test_split_sources_give_each_text_its_file_and_line(tmp_path, fmt, first_line):
    from tfemotion.data import split_sources

    folder = write_dataset(tmp_path, fmt, sizes=(30, 10, 10))
    sources = split_sources(DataConfig(source=str(folder)))
    assert len(sources) == len(load_data(folder)["train"]) == 30
    assert sources[0] == f"{folder / f'train.{fmt}'}:{first_line}"
    assert sources[-1] == f"{folder / f'train.{fmt}'}:{first_line + 29}"
    assert split_sources(DataConfig(source=str(folder)), "validation")[0].endswith(
        f"validation.{fmt}:{first_line}")
    single = split_sources(DataConfig(source=str(folder / f"train.{fmt}")))
    assert single == sources
    with pytest.raises(DataError, match=r"no test split. Received: splits=\['train'\]"):
        split_sources(DataConfig(source=str(folder / f"train.{fmt}")), "test")


def test_split_sources_of_loaded_hub_data_are_its_rows(tmp_path):
    from datasets import DatasetDict

    from tfemotion.data import split_sources

    loaded = DatasetDict({"train": load_data(write_dataset(tmp_path, "txt"))["train"]})
    assert split_sources(DataConfig(source="someone/emotions"), dataset_dict=loaded) == [
        f"someone/emotions train row {i}" for i in range(1, 121)]
