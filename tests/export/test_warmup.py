"""TF Serving's warm-up file: valid requests, one per batch size."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from tfemotion.config import ExportConfig


def test_export_warmup_requests_are_valid_requests(verified_export):
    from tensorflow_serving.apis import prediction_log_pb2

    report = verified_export
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
