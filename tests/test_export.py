"""The SavedModel export: signatures, fresh-process verification, atomic publish, versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tfemotion.config import EMOTION_LABELS, ExportConfig, FinetuneConfig
from tfemotion.export import ExportVerificationError, export_model, export_run
from tfemotion.signatures import SIGNATURES, next_version
from tfemotion.tokenizer import STRESS_TEXTS

from conftest import synthetic_rows, write_run_record

LABELS = list(EMOTION_LABELS)


def make_classifier(folder: Path, checkpoint: Path) -> Path:
    """A sequence classifier with the six emotion labels, saved like `tfemotion train` does."""
    from transformers import AutoTokenizer, TFAutoModelForSequenceClassification

    model = TFAutoModelForSequenceClassification.from_pretrained(
        checkpoint, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)})
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(checkpoint).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory, tiny_bert_dir) -> Path:
    return make_classifier(tmp_path_factory.mktemp("classifier"), tiny_bert_dir)


@pytest.fixture(scope="module")
def run_export(tmp_path_factory, classifier_dir, emotion_dir):
    """export_run on a run folder (uncased vocabulary), verified in a fresh process."""
    run = tmp_path_factory.mktemp("run")
    shutil.copytree(classifier_dir, run / "model")
    write_run_record(run, emotion_dir, FinetuneConfig(model="tiny", max_length=32), LABELS, 32)
    base = tmp_path_factory.mktemp("models")
    return export_run(run, ExportConfig(base_path=str(base))), base


def test_export_run_publishes_a_verified_first_version(run_export):
    report, base = run_export
    assert report["path"] == str(base / "emotion" / "1") and report["version"] == 1
    assert sorted(p.name for p in (base / "emotion").iterdir()) == ["1"]  # no temp folder left
    verification = report["verification"]
    assert verification["passed"] and verification["failures"] == []
    assert verification["foreign_modules"] == []
    assert verification["token_id_mismatches"] == 0
    assert verification["texts"] == 40 + len(STRESS_TEXTS)  # the run's validation split
    assert report["validation_texts"] == 40 and report["max_length"] == 32
    assert max(verification["max_abs_diff"].values()) <= 1e-5
    # Every signature answered like the Keras model through both loading paths: TF2's and
    # TensorFlow Serving's session (SignatureDef tensor names), which also replayed the warm-up.
    assert set(verification["checked_texts"]) == set(SIGNATURES) | {
        f"{name} (session)" for name in SIGNATURES}
    assert verification["tensorflow_serving_path"] == {"bad_ops": [], "warmup_records": 8}
    assert report["labels"] == LABELS and report["raw_text"] is True


def test_export_signatures_match_the_table(run_export):
    report, _ = run_export
    loaded = tf.saved_model.load(report["path"])
    assert sorted(loaded.signatures) == sorted(SIGNATURES)
    for name, table in SIGNATURES.items():
        function = loaded.signatures[name]
        inputs = function.structured_input_signature[1]
        assert {k: v.dtype.name for k, v in inputs.items()} == table["inputs"]
        assert {k: v.dtype.name for k, v in function.structured_outputs.items()} == table["outputs"]


def test_export_signatures_answer_with_table_shapes(run_export):
    report, _ = run_export
    signatures = tf.saved_model.load(report["path"]).signatures
    texts = ["i feel happy", "", "i am so scared and sad today"]
    out = signatures["serving_default"](text=tf.constant(texts))
    assert out["label"].shape == (3,) and out["label"].dtype == tf.string
    assert out["label_id"].shape == (3,) and out["label_id"].dtype == tf.int64
    assert out["probabilities"].shape == (3, 6) and out["probabilities"].dtype == tf.float32
    np.testing.assert_allclose(out["probabilities"].numpy().sum(axis=1), 1.0, rtol=1e-5)
    names = [b.decode() for b in out["label"].numpy()]
    assert names == [LABELS[i] for i in out["label_id"].numpy()]

    tokens = signatures["tokenize"](text=tf.constant(texts))
    width = report["max_length"]  # whatever the batch: parts of a split request must join
    assert tokens["input_ids"].dtype == tf.int32 and tokens["attention_mask"].shape == (3, width)
    assert tokens["input_ids"].shape == (3, width)
    longest = int(tokens["attention_mask"].numpy().sum(axis=1).max())
    assert longest < width and (tokens["input_ids"].numpy()[:, longest:] == 0).all()  # [PAD]
    tokens = {k: v[:, :longest] for k, v in tokens.items()}

    for name, dtype in (("encoded", tf.int32), ("encoded_int64", tf.int64)):
        scores = signatures[name](input_ids=tf.cast(tokens["input_ids"], dtype),
                                  attention_mask=tf.cast(tokens["attention_mask"], dtype))
        assert scores["logits"].shape == (3, 6) and scores["logits"].dtype == tf.float32
        np.testing.assert_allclose(scores["probabilities"], out["probabilities"], atol=1e-6)

    examples = [_example(t) for t in texts]
    classified = signatures["classify"](inputs=tf.constant(examples))
    assert classified["classes"].shape == (3, 6) and classified["classes"].dtype == tf.string
    assert [c.decode() for c in classified["classes"].numpy()[2]] == LABELS
    np.testing.assert_allclose(classified["scores"], out["probabilities"], atol=1e-6)


def test_export_warmup_requests_are_valid_requests(run_export):
    from tensorflow_serving.apis import prediction_log_pb2

    report, _ = run_export
    signatures = tf.saved_model.load(report["path"]).signatures
    path = Path(report["path"], "assets.extra", "tf_serving_warmup_requests")
    records = list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())
    assert 3 <= len(records) == report["warmup_requests"] <= 1000
    kinds = set()
    for record in records:
        log = prediction_log_pb2.PredictionLog.FromString(record)
        kinds.add(log.WhichOneof("log_type"))
        if log.HasField("predict_log"):
            request = log.predict_log.request
            inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            assert request.model_spec.name == "emotion"
            signatures[request.model_spec.signature_name](**inputs)
        else:
            request = log.classify_log.request
            serialized = [e.SerializeToString() for e in request.input.example_list.examples]
            assert request.model_spec.signature_name == "classify"
            signatures["classify"](inputs=tf.constant(serialized))
    assert kinds == {"predict_log", "classify_log"}
    predict_sizes = sorted(
        prediction_log_pb2.PredictionLog.FromString(r).predict_log.request.inputs["text"]
        .tensor_shape.dim[0].size for r in records
        if prediction_log_pb2.PredictionLog.FromString(r).predict_log.request.inputs.get("text"))
    assert predict_sizes == list(ExportConfig().warmup_batch_sizes)  # every batch shape served


def test_tokenize_answers_join_when_a_request_is_split_over_batches(run_export):
    """TF Serving's large-batch splitting runs parts of one request in different batches and
    joins their outputs: tokenize's width must not depend on the batch."""
    from tfemotion.batching import BatchingParameters, BatchScheduler

    report, _ = run_export
    tokenize = tf.saved_model.load(report["path"]).signatures["tokenize"]

    def run(key, inputs, output_keys):
        return {k: v.numpy() for k, v in tokenize(text=tf.constant(inputs["text"])).items()}

    texts = np.array([b"a", b"b", b"c", b"d", b"the longest text of them all, by far"], object)
    scheduler = BatchScheduler(run, BatchingParameters(
        max_batch_size=8, enable_large_batch_splitting=True, max_execution_batch_size=3,
        num_batch_threads=1))
    try:
        split = scheduler("tokenize", {"text": texts})  # parts of 3 and 2 texts
    finally:
        scheduler.close()
    alone = run("tokenize", {"text": texts}, None)
    for key in ("input_ids", "attention_mask"):
        np.testing.assert_array_equal(split[key], alone[key])


def test_export_model_cased_vocabulary_verifies(tiny_cased_bert_dir, tmp_path):
    from transformers import AutoTokenizer

    cased = make_classifier(tmp_path / "cased", tiny_cased_bert_dir)
    texts = ["I Feel HAPPY", "The Sad day", "Ünïcode Straße"] + [t for t, _ in synthetic_rows(20)]
    config = ExportConfig(base_path=str(tmp_path / "models"), version=5)
    report = export_model(cased, config, texts=texts)
    assert report["path"] == str(tmp_path / "models" / "emotion" / "5")  # the version asked for
    assert report["verification"]["passed"] and report["verification"]["token_id_mismatches"] == 0
    assert report["tokenizer"]["lowercase"] is False and report["max_length"] == 64
    tokens = tf.saved_model.load(report["path"]).signatures["tokenize"](text=tf.constant(["Happy"]))
    expected = AutoTokenizer.from_pretrained(cased)("Happy")["input_ids"]
    assert tokens["input_ids"].numpy()[0][: len(expected)].tolist() == expected


@pytest.mark.parametrize("checkpoint, family", [("tiny_roberta_dir", "byte-level BPE"),
                                                ("tiny_xlmr_dir", "SentencePiece Unigram")])
def test_export_roberta_and_xlmr_checkpoints_get_raw_text_signatures_that_verify(
        checkpoint, family, request, tmp_path):
    """Byte-level BPE and SentencePiece Unigram in the graph: the RoBERTa and XLM-R families
    serve raw text like BERT's."""
    from transformers import AutoTokenizer

    classifier = make_classifier(tmp_path / "classifier", request.getfixturevalue(checkpoint))
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


def test_export_failed_verification_publishes_nothing(classifier_dir, tmp_path, monkeypatch):
    import tfemotion._verify_export as verify

    real = verify._keras_probabilities
    monkeypatch.setattr(verify, "_keras_probabilities",
                        lambda *args: (np.asarray(real(*args)) + 1e-3).tolist())
    with pytest.raises(ExportVerificationError, match="probabilities differ") as raised:
        export_model(classifier_dir, ExportConfig(base_path=str(tmp_path)))
    assert raised.value.report["passed"] is False
    assert list((tmp_path / "emotion").iterdir()) == []  # neither a version nor a temp folder


def test_a_bfloat16_export_computes_in_bfloat16_and_is_verified_against_float32(
        classifier_dir, tmp_path):
    texts = ["i feel happy today", "so sad", "what a surprise", "i am scared"] * 10
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


def test_export_refuses_an_export_that_changes_labels(classifier_dir, tmp_path, monkeypatch):
    import tfemotion._verify_export as verify
    import tfemotion.export as exporting

    real = verify._keras_probabilities
    # The expected answers with the two most probable labels swapped, probabilities within
    # the bfloat16 tolerance: the label check fails the export on its own.
    def swapped(*args):
        rows = np.asarray(real(*args))
        order = np.argsort(rows, axis=1)
        for row, (second, first) in zip(rows, order[:, -2:]):
            row[first], row[second] = row[second], row[first]
        return rows.tolist()

    monkeypatch.setattr(verify, "_keras_probabilities", swapped)
    monkeypatch.setitem(exporting.TOLERANCES, "float32", 1.0)
    with pytest.raises(ExportVerificationError, match=r"the same labels as the Keras model "
                       r"on \d+ of \d+ texts .*at least 99.5% needed"):
        export_model(classifier_dir, ExportConfig(base_path=str(tmp_path)))
    assert list((tmp_path / "emotion").iterdir()) == []
    with pytest.raises(ValueError, match="precision must be one of"):
        ExportConfig(precision="int8")


def test_export_versions_count_up_and_are_never_overwritten(classifier_dir, tmp_path):
    root = tmp_path / "emotion"
    for existing in ("1", "3", ".tmp-export-x", "7.partial"):
        (root / existing).mkdir(parents=True)
    assert next_version(root) == 4
    config = ExportConfig(base_path=str(tmp_path), verify=False)
    with pytest.raises(FileExistsError, match="Received: version=3"):
        export_model(classifier_dir, config.replace(version=3))
    assert list((root / "3").iterdir()) == []
    report = export_model(classifier_dir, config)
    assert report["version"] == 4 and report["verification"] is None
    assert (root / "4" / "saved_model.pb").exists() and next_version(root) == 5


def test_export_unsupported_tokenizer_gets_encoded_signatures_only(classifier_dir, tmp_path):
    from test_tokenizer import _trained_fast_tokenizer

    folder = tmp_path / "word-level"
    shutil.copytree(classifier_dir, folder)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    _trained_fast_tokenizer("word-level").save_pretrained(folder)
    report = export_model(folder, ExportConfig(base_path=str(tmp_path / "models"), verify=False))
    assert report["raw_text"] is False and "WordPiece" in report["unsupported_reason"]
    assert report["signatures"] == ["encoded", "encoded_int64"]
    signatures = tf.saved_model.load(report["path"]).signatures
    assert sorted(signatures) == ["encoded", "encoded_int64"]
    out = signatures["encoded_int64"](input_ids=tf.constant([[2, 5, 7, 3]], tf.int64),
                                      attention_mask=tf.ones([1, 4], tf.int64))
    assert out["probabilities"].shape == (1, 6)


def _example(text: str) -> bytes:
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode()]))
    example = tf.train.Example(features=tf.train.Features(feature={"text": feature}))
    return example.SerializeToString()


def test_export_is_checked_in_the_tensorflow_of_the_pinned_serving_release(run_export):
    """make test builds .venv-serving with the TensorFlow of serving/.env's release; every
    verified export then loads there through the session path and replays its warm-up."""
    import os

    if not os.environ.get("TFEMOTION_SERVING_PYTHON"):
        pytest.skip("needs the serving environment: make test builds .venv-serving")
    report, _ = run_export
    env = dict(line.split("=", 1) for line in
               (Path(__file__).resolve().parents[1] / "serving" / ".env").read_text().splitlines()
               if line and not line.startswith("#"))
    minor = ".".join(env["TF_SERVING_VERSION"].split(".")[:2])
    check = report["tensorflow_serving_check"]
    assert check["passed"] and check["warmup_records"] == report["warmup_requests"]
    assert check["tensorflow"].startswith(minor) and check["tensorflow_serving"].startswith(minor)
    info = json.loads(Path(report["path"], "assets.extra", "tfemotion_export.json").read_text())
    assert info["tensorflow_serving_check"] == check
    assert info["tensorflow_version"] == tf.__version__


@pytest.mark.parametrize("python", ["/bin/false", "/nonexistent/python"])
def test_an_export_that_fails_in_the_serving_release_is_not_published(classifier_dir, tmp_path,
                                                                      monkeypatch, python):
    monkeypatch.setenv("TFEMOTION_SERVING_PYTHON", python)  # an environment that fails
    config = ExportConfig(base_path=str(tmp_path / "models"))
    with pytest.raises(ExportVerificationError, match="does not load in TensorFlow Serving's"):
        export_model(classifier_dir, config)
    assert [p.name for p in (tmp_path / "models" / "emotion").iterdir()] == []
