"""The export's graph: its signatures answer with the table's keys, dtypes and shapes."""

from __future__ import annotations

import numpy as np
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
