"""Exports: signatures, verification, versions, every family's tokenizer, multi-label decisions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from support import make_saved_classifier, synthetic_rows, trained_fast_tokenizer

from tfemotion.config import EMOTION_LABELS, ExportConfig
from tfemotion.export import export_model, export_run
from tfemotion.export.signatures import SIGNATURES, next_version
from tfemotion.tokenizers import STRESS_TEXTS

# Every test here exports and verifies in a fresh process: not in `make check`.
pytestmark = pytest.mark.integration

LABELS = list(EMOTION_LABELS)


def test_multi_label_export_serves_the_tuned_decisions(multi_label_run, tmp_path):
    from tfemotion.prediction import predict
    from tfemotion.runfolder import RunFolder, RunRecord
    from tfemotion.serving.client import format_prediction

    run, _ = multi_label_run
    report = export_run(run, ExportConfig(base_path=str(tmp_path)))
    assert report["verification"]["passed"] and report["problem_type"] == "multi_label"
    thresholds = RunRecord.load(RunFolder(run)).thresholds
    assert report["thresholds"] == list(thresholds)
    texts = ["i feel so happy and glad and scared", "angry and mad", "nothing at all"]
    out = tf.saved_model.load(report["path"]).signatures["serving_default"](
        text=tf.constant(texts))
    probabilities, predicted = out["probabilities"].numpy(), out["predicted"].numpy()
    np.testing.assert_array_equal(predicted, probabilities >= np.float32(thresholds))
    for names, flags in zip(out["labels"].numpy(), predicted):
        wanted = [n for n, on in zip(EMOTION_LABELS, flags) if on]
        assert [b.decode() for b in names] == wanted + [""] * (6 - len(wanted))
    from_export = predict(report["path"], texts)
    from_run = predict(run, texts)
    assert [r["labels"] for r in from_export] == [r["labels"] for r in from_run]
    for result in from_export:  # each predicted label with its score, or that there is none
        found = ", ".join(f"{name} {result['scores'][name]:.3f}" for name in result["labels"])
        assert format_prediction(result) == f"{found or '(no label)'}  {result['text']}"


def test_thresholds_are_refused_for_a_single_label_model(classifier_dir, tmp_path):
    with pytest.raises(ValueError, match="thresholds are for multi-label models"):
        export_model(classifier_dir, ExportConfig(base_path=str(tmp_path), verify=False),
                     thresholds=[0.5] * 6)


def test_a_task_that_does_not_fit_the_model_s_head_is_refused(classifier_dir, tmp_path):
    from tfemotion.task import Task

    with pytest.raises(ValueError, match="the task has 2 labels, the model's head 6"):
        export_model(classifier_dir, ExportConfig(base_path=str(tmp_path), verify=False),
                     task=Task(("neg", "pos")))


def test_export_run_verifies_on_the_texts_it_is_given_without_loading_the_data(
        trained_run, tmp_path, monkeypatch):
    from tfemotion.export import exporter, verification

    verified = []
    monkeypatch.setattr(verification, "verify_in_fresh_process",
                        lambda folder, model, tokenizer, texts, *rest: verified.append(texts)
                        or {"passed": True})
    monkeypatch.setattr(exporter, "_validation_texts", lambda *_: pytest.fail("loaded the data"))
    report = export_run(trained_run[0], ExportConfig(base_path=str(tmp_path / "models")),
                        texts=["i feel happy", "so sad"])
    assert report["validation_texts"] == 2 and verified == [["i feel happy", "so sad"]]


def test_export_run_publishes_a_verified_first_version(verified_export):
    report = verified_export
    base = Path(report["base_path"])
    assert report["path"] == str(base / "emotion" / "1") and report["version"] == 1
    assert sorted(p.name for p in (base / "emotion").iterdir()) == ["1"]  # no temp folder left
    verification = report["verification"]
    assert verification["passed"] and verification["failures"] == []
    assert verification["foreign_modules"] == []
    assert verification["token_id_mismatches"] == 0
    assert verification["texts"] == 60 + len(STRESS_TEXTS)  # the run's validation split
    assert report["validation_texts"] == 60 and report["max_length"] == 64
    assert max(verification["max_abs_diff"].values()) <= 1e-5
    # Every signature answered like the Keras model through both loading paths: TF2's and
    # TensorFlow Serving's session (SignatureDef tensor names), which also replayed the warm-up.
    assert set(verification["checked_texts"]) == set(SIGNATURES) | {
        f"{name} (session)" for name in SIGNATURES}
    assert verification["tensorflow_serving_path"] == {"bad_ops": [], "warmup_records": 8}
    assert report["labels"] == LABELS and report["raw_text"] is True
    # its last file: the manifest a copy is checked against (serving/sync-models.sh)
    from tfemotion.export.manifest import check_manifest

    assert check_manifest(report["path"]) == []


def test_an_export_of_a_cased_vocabulary_keeps_the_case(tiny_cased_bert_dir, tmp_path):
    from transformers import AutoTokenizer

    cased = make_saved_classifier(tmp_path / "cased", tiny_cased_bert_dir)
    texts = ["I Feel HAPPY", "The Sad day", "Ünïcode Straße"] + [t for t, _ in synthetic_rows(20)]
    config = ExportConfig(base_path=str(tmp_path / "models"), version=5, verify=False)
    report = export_model(cased, config)
    assert report["path"] == str(tmp_path / "models" / "emotion" / "5")  # the version asked for
    assert report["tokenizer"]["lowercase"] is False and report["max_length"] == 64
    tokens = tf.saved_model.load(report["path"]).signatures["tokenize"](text=tf.constant(texts))
    expected = AutoTokenizer.from_pretrained(cased)(texts)["input_ids"]
    for ids, mask, want in zip(tokens["input_ids"].numpy(), tokens["attention_mask"].numpy(),
                               expected):
        assert ids[:mask.sum()].tolist() == want  # cased: "HAPPY" is not "happy"


@pytest.mark.parametrize("checkpoint, family", [("tiny_roberta_dir", "byte-level BPE"),
                                                ("tiny_xlmr_dir", "SentencePiece Unigram")])
def test_export_roberta_and_xlmr_checkpoints_get_raw_text_signatures_that_verify(
        checkpoint, family, request, tmp_path):
    """Byte-level BPE and SentencePiece Unigram in the graph: the RoBERTa and XLM-R families
    serve raw text like BERT's."""
    from transformers import AutoTokenizer

    classifier = make_saved_classifier(tmp_path / "classifier",
                                       request.getfixturevalue(checkpoint))
    texts = ["i feel happy", "don't you're <mask> sad", "Ünïcode 😀 2024 ①\u0301 ＡＢＣ"] + [
        t for t, _ in synthetic_rows(20)]
    report = export_model(classifier, ExportConfig(base_path=str(tmp_path / "models")),
                          texts=texts)
    assert report["raw_text"] is True and report["tokenizer"]["family"] == family
    assert report["signatures"] == sorted(SIGNATURES)
    assert report["verification"]["passed"] and report["verification"]["token_id_mismatches"] == 0
    signatures = tf.saved_model.load(report["path"]).signatures
    tokens = signatures["tokenize"](text=tf.constant(["don't <mask> ＡＢＣ"]))
    length = int(tokens["attention_mask"].numpy()[0].sum())
    assert tokens["input_ids"].numpy()[0][:length].tolist() == \
        AutoTokenizer.from_pretrained(classifier)("don't <mask> ＡＢＣ")["input_ids"]
    assert signatures["serving_default"](text=tf.constant(texts))["probabilities"].shape == (23, 6)


def test_a_bfloat16_export_computes_in_bfloat16_and_is_verified_against_float32(
        classifier_dir, tmp_path):
    from tfemotion.prediction import predict

    texts = ["i feel happy today", "so sad", "what a surprise, i am amazed", "i am scared"] * 10
    # Texts the float32 model labels by a wide margin: the labels cannot hang on how this CPU
    # rounds bfloat16 (a probability moves by at most the tolerance, 0.1, or verification fails).
    for result in predict(classifier_dir, texts[:4]):
        first, second = sorted(result["scores"].values())[:-3:-1]
        assert first - second > 0.2, result
    config = ExportConfig(base_path=str(tmp_path), precision="bfloat16")
    report = export_model(classifier_dir, config, texts=texts)
    verification = report["verification"]
    assert report["precision"] == "bfloat16" and verification["passed"]
    assert verification["tolerance"] == 0.1 and verification["min_label_agreement"] == 0.995
    # Inputs and outputs keep the float32 export's dtypes (checked against the table); the
    # answers differ from float32 by a bfloat16 rounding, not by zero.
    assert 0 < verification["max_abs_diff"]["serving_default"] <= 0.1
    agreed, total = verification["label_agreement"]["serving_default (session)"]
    assert total == verification["texts"] and agreed / total >= 0.995
    info = json.loads((Path(report["path"]) / "assets.extra" / "tfemotion_export.json")
                      .read_text())
    assert info["precision"] == "bfloat16"
    graph = tf.saved_model.load(report["path"]).signatures["encoded"].graph.as_graph_def()
    dtypes = {attr.type for f in graph.library.function for node in f.node_def
              for attr in node.attr.values()}
    assert tf.bfloat16.as_datatype_enum in dtypes


def test_export_versions_count_up_and_are_never_overwritten(classifier_dir, tmp_path):
    root = tmp_path / "emotion"
    for existing in ("1", "3", ".tmp-export-x", "7.partial"):
        (root / existing).mkdir(parents=True)
    assert next_version(root) == 4
    config = ExportConfig(base_path=str(tmp_path), verify=False)
    with pytest.raises(FileExistsError, match="Received: version=3"):
        export_model(classifier_dir, config.replace(version=3))
    assert list((root / "3").iterdir()) == []  # the existing version is left as it was
    report = export_model(classifier_dir, config)
    assert report["version"] == 4 and report["verification"] is None
    assert (root / "4" / "saved_model.pb").exists() and next_version(root) == 5


def test_export_unsupported_tokenizer_gets_encoded_signatures_only(classifier_dir, tmp_path):
    folder = tmp_path / "word-level"
    shutil.copytree(classifier_dir, folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    trained_fast_tokenizer("word-level").save_pretrained(folder)
    report = export_model(folder, ExportConfig(base_path=str(tmp_path / "models"), verify=False))
    assert report["raw_text"] is False and "WordPiece" in report["unsupported_reason"]
    assert report["signatures"] == ["encoded", "encoded_int64"]
    signatures = tf.saved_model.load(report["path"]).signatures
    assert sorted(signatures) == ["encoded", "encoded_int64"]
    out = signatures["encoded_int64"](input_ids=tf.constant([[2, 5, 7, 3]], tf.int64),
                                      attention_mask=tf.ones([1, 4], tf.int64))
    assert out["probabilities"].shape == (1, 6)


def test_the_export_windows_follow_the_config_and_the_task():
    from tfemotion.config import ExportConfig
    from tfemotion.export.exporter import export_windows
    from tfemotion.task import MULTI_LABEL, Task

    single, multi = Task(("a", "b")), Task(("a", "b"), MULTI_LABEL)
    assert export_windows(ExportConfig(long_texts="truncate"), 512, single) is None
    windows = export_windows(ExportConfig(stride=0, max_windows=9), 64, multi)
    assert (windows.stride, windows.max_windows, windows.pooling) == (0, 9, "max")
    assert export_windows(ExportConfig(), 512, single).stride == 64  # max_length // 8
