"""The export's graph: its signatures answer with the table's keys, dtypes and shapes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tfemotion.config import EMOTION_LABELS
from tfemotion.export.signatures import SIGNATURES

LABELS = list(EMOTION_LABELS)


def _example(text: str) -> bytes:
    feature = tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")]))
    return tf.train.Example(features=tf.train.Features(feature={"text": feature}))\
        .SerializeToString()


def test_export_signatures_match_the_table(verified_export):
    report = verified_export
    loaded = tf.saved_model.load(report["path"])
    assert sorted(loaded.signatures) == sorted(SIGNATURES)
    for name, table in SIGNATURES.items():
        function = loaded.signatures[name]
        inputs = function.structured_input_signature[1]
        assert {k: v.dtype.name for k, v in inputs.items()} == table["inputs"]
        assert {k: v.dtype.name for k, v in function.structured_outputs.items()} == table["outputs"]


def test_export_signatures_answer_with_table_shapes(verified_export):
    report = verified_export
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


def test_tokenize_answers_join_when_a_request_is_split_over_batches(verified_export):
    """TF Serving's large-batch splitting runs parts of one request in different batches and
    joins their outputs: tokenize's width must not depend on the batch."""
    from tfemotion.serving.batching import BatchingParameters, BatchScheduler

    report = verified_export
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


def test_every_probability_of_the_export_is_calibrated_and_the_logits_stay_raw(
        verified_export, trained_run):
    """The run's temperature is in the graph: softmax(logits / T) in numpy, from the export's own
    raw logits, equals what serving_default, classify and encoded return; the logits equal the
    Keras model's."""
    from tfemotion.export.record import ExportRecord
    from tfemotion.evaluation.outputs import softmax
    from tfemotion.prediction import load_classifier
    from tfemotion.runfolder import RunFolder, RunRecord

    temperatures = RunRecord.load(RunFolder(trained_run[0])).temperatures
    assert ExportRecord.load(verified_export["path"]).temperatures == list(temperatures)
    assert abs(temperatures[0] - 1.0) > 0.01  # else this test could not tell
    signatures = tf.saved_model.load(verified_export["path"]).signatures
    texts = ["i feel happy", "", "i am so scared and sad today", "what a lovely surprise"]
    tokens = signatures["tokenize"](text=tf.constant(texts))
    width = int(tokens["attention_mask"].numpy().sum(axis=1).max())
    ids, mask = tokens["input_ids"][:, :width], tokens["attention_mask"][:, :width]
    encoded = signatures["encoded"](input_ids=ids, attention_mask=mask)
    model = load_classifier(trained_run[0])[0]
    keras_logits = model(input_ids=ids, attention_mask=mask, training=False).logits.numpy()
    np.testing.assert_allclose(encoded["logits"].numpy(), keras_logits, atol=1e-5)
    expected = softmax(encoded["logits"].numpy() / temperatures[0])
    np.testing.assert_allclose(encoded["probabilities"].numpy(), expected, atol=1e-6)
    served = signatures["serving_default"](text=tf.constant(texts))
    np.testing.assert_allclose(served["probabilities"].numpy(), expected, atol=1e-5)
    assert served["label_id"].numpy().tolist() == keras_logits.argmax(axis=1).tolist()
    scores = signatures["classify"](inputs=tf.constant([_example(t) for t in texts]))["scores"]
    np.testing.assert_allclose(scores.numpy(), expected, atol=1e-5)


# Long texts: windows -------------------------------------------------------------------------


def _hf_windows(tokenizer, texts, max_length, stride):
    out = tokenizer(texts, truncation=True, max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, padding=True, return_tensors="np")
    return out, out["overflow_to_sample_mapping"]


def test_a_long_text_is_read_in_windows_whose_logits_are_averaged(verified_export):
    from transformers import AutoTokenizer

    report = verified_export
    assert report["long_texts"] == "windows" and report["window_pooling"] == "mean"
    signatures = tf.saved_model.load(report["path"]).signatures
    texts = ["i feel happy " * 30 + "but now i am so sad and angry", "i feel happy"]
    tokenizer = AutoTokenizer.from_pretrained(report["source"])
    windows, text_of = _hf_windows(tokenizer, texts, report["max_length"], report["stride"])
    assert text_of.tolist().count(0) >= 2  # the long text needs windows
    logits = signatures["encoded"](input_ids=tf.constant(windows["input_ids"], tf.int32),
                                   attention_mask=tf.constant(windows["attention_mask"],
                                                              tf.int32))["logits"].numpy()
    pooled = np.stack([logits[text_of == i].mean(axis=0) for i in range(2)])
    # the calibration divides the text's pooled logits
    want = tf.nn.softmax(pooled / np.asarray(report["temperatures"] or [1.0])).numpy()
    out = signatures["serving_default"](text=tf.constant(texts))
    assert out["windows"].numpy().tolist() == [text_of.tolist().count(0), 1]
    np.testing.assert_allclose(out["probabilities"].numpy(), want, atol=1e-5)
    scores = signatures["classify"](inputs=tf.constant([_example(t) for t in texts]))["scores"]
    np.testing.assert_allclose(scores.numpy(), want, atol=1e-5)


def _module(classifier_dir, task, windows, thresholds=None):
    from transformers import AutoTokenizer

    from tfemotion.export.graph import serving_module
    from tfemotion.models import load_run_model
    from tfemotion.tokenizers import from_hf_tokenizer

    in_graph = from_hf_tokenizer(AutoTokenizer.from_pretrained(classifier_dir), 16)
    model = load_run_model(classifier_dir)
    return serving_module(model, in_graph, task, thresholds=thresholds, windows=windows)[1]


def test_windows_change_nothing_within_the_window_and_refuse_a_request_past_the_cap(
        classifier_dir):
    from tfemotion.export.graph import Windows
    from tfemotion.task import Task

    task = Task(tuple(LABELS))
    windowed = _module(classifier_dir, task, Windows(stride=2, max_windows=5))
    truncating = _module(classifier_dir, task, None)
    short = tf.constant(["i feel happy", "", "so sad"])
    a, b = windowed["serving_default"](short), truncating["serving_default"](short)
    np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-6)
    assert a["windows"].numpy().tolist() == b["windows"].numpy().tolist() == [1, 1, 1]
    long = tf.constant(["i feel happy " * 10 + "and sad"])  # 33 tokens: 3 windows of 14
    assert windowed["serving_default"](long)["windows"].numpy().tolist() == [3]
    assert truncating["serving_default"](long)["windows"].numpy().tolist() == [1]
    with pytest.raises(tf.errors.InvalidArgumentError, match="more than 5 windows.*max_windows"):
        windowed["serving_default"](tf.concat([long, long], 0))


def test_multi_label_windows_take_each_labels_highest_logit(classifier_dir):
    from transformers import AutoTokenizer

    from tfemotion.export.graph import Windows
    from tfemotion.task import MULTI_LABEL, Task

    task = Task(tuple(LABELS), MULTI_LABEL)
    signatures = _module(classifier_dir, task, Windows(stride=2, max_windows=50, pooling="max"),
                         thresholds=[0.5] * 6)
    texts = ["i feel happy " * 10 + "but so angry and scared", "i am sad"]
    windows, text_of = _hf_windows(AutoTokenizer.from_pretrained(classifier_dir), texts, 16, 2)
    logits = signatures["encoded"](tf.constant(windows["input_ids"], tf.int32),
                                   tf.constant(windows["attention_mask"], tf.int32))["logits"]
    want = tf.sigmoid(np.stack([logits.numpy()[text_of == i].max(axis=0) for i in range(2)]))
    out = signatures["serving_default"](tf.constant(texts))
    np.testing.assert_allclose(out["probabilities"], want, atol=1e-6)
    assert out["windows"].numpy().tolist() == [text_of.tolist().count(0), 1]
    assert (out["predicted"].numpy() == (want.numpy() >= 0.5)).all()


def test_length_groups_hold_a_token_budget_and_answer_as_one_batch():
    from tfemotion.export.graph import run_in_length_groups

    calls = []

    def encoded(input_ids, attention_mask):
        calls.append(tuple(input_ids.shape))
        value = tf.cast(tf.reduce_sum(input_ids * attention_mask, axis=1, keepdims=True),
                        tf.float32)
        return {"logits": value, "probabilities": value}

    lengths = [3, 10, 10, 2, 7]
    ids = tf.constant([[1] * n + [0] * (10 - n) for n in lengths], tf.int32)
    mask = tf.cast(ids > 0, tf.int32)
    out = run_in_length_groups(encoded, ids, mask, 1, group_size=3, output="logits",
                               group_tokens=20)
    assert out.numpy().ravel().tolist() == lengths
    # sorted 2, 3, 7 | 10, 10: 3 x 7 > 20, so 2, 3 then 7, 10 (2 x 10 <= 20), then 10
    assert calls == [(2, 3), (2, 10), (1, 10)]


def test_a_long_texts_short_last_window_is_not_padded_to_a_full_one():
    from tfemotion.export.graph import run_in_length_groups

    widths = []

    def encoded(input_ids, attention_mask):
        widths.append(tuple(input_ids.shape))
        return {"logits": tf.zeros([tf.shape(input_ids)[0], 1])}

    lengths = [512, 512, 110]  # a 1,000-token text's windows at max_length 512, stride 64
    ids = tf.constant([[1] * n + [0] * (512 - n) for n in lengths], tf.int32)
    run_in_length_groups(encoded, ids, tf.cast(ids > 0, tf.int32), 1, output="logits")
    assert sorted(widths) == [(1, 110), (1, 512), (1, 512)]
