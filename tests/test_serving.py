"""The gRPC client (tfemotion.serving) against the development server (tfemotion.devserver).

Until tfemotion.export exists these tests serve a small stand-in SavedModel with the export's
signatures (``serving_default``, ``classify``, ``tokenize``, ``encoded``, ``encoded_int64``): a
tf.Module that hashes words and scores six emotion labels by keyword, with core ops only.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
import grpc

from tfemotion.config import ServingConfig
from tfemotion.devserver import DevServer, start_server
from tfemotion.signatures import signature_table
from tfemotion.serving import Prediction, ServingClient, ServingError, format_query, \
    parse_server, query

LABELS = ("sadness", "joy", "love", "anger", "fear", "surprise")
KEYWORDS = (("sad", "gloomy"), ("happy", "glad"), ("love", "adore"), ("angry", "mad"),
            ("scared", "afraid"), ("surprised", "amazed"))
BUCKETS = 4096
SIGNATURES = {"serving_default", "classify", "tokenize", "encoded", "encoded_int64"}
# Small limits so that the limit tests stay fast.
LIMITS = dict(max_batch_size=8, max_text_chars=10_000, max_request_bytes=1 << 20)


# region stand-in export
class FakeEmotionModel(tf.Module):
    """Hashes lower-cased words; each label's keywords add 4 to its logit."""

    def __init__(self):
        super().__init__()
        weights = np.zeros((BUCKETS, len(LABELS)), np.float32)
        for k, words in enumerate(KEYWORDS):
            weights[tf.strings.to_hash_bucket_fast(list(words), BUCKETS - 1).numpy() + 1, k] = 4.0
        self.weights = tf.Variable(weights)
        self.labels = tf.constant(LABELS)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def tokenize(self, text):
        words = tf.strings.split(tf.strings.lower(text))
        ids = tf.cast((tf.strings.to_hash_bucket_fast(words, BUCKETS - 1) + 1).to_tensor(0),
                      tf.int32)
        return {"input_ids": ids, "attention_mask": tf.cast(ids > 0, tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="input_ids"),
                                  tf.TensorSpec([None, None], tf.int32, name="attention_mask")])
    def encoded(self, input_ids, attention_mask):
        mask = tf.cast(attention_mask, tf.float32)[..., None]
        logits = tf.reduce_sum(tf.gather(self.weights, input_ids) * mask, axis=1)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits)}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int64, name="input_ids"),
                                  tf.TensorSpec([None, None], tf.int64, name="attention_mask")])
    def encoded_int64(self, input_ids, attention_mask):
        return self.encoded(tf.cast(input_ids, tf.int32), tf.cast(attention_mask, tf.int32))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve(self, text):
        probabilities = self.encoded(**self.tokenize(text))["probabilities"]
        label_id = tf.argmax(probabilities, axis=-1)
        return {"label": tf.gather(self.labels, label_id), "label_id": label_id,
                "probabilities": probabilities}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        features = {"text": tf.io.FixedLenFeature([], tf.string, default_value="")}
        text = tf.io.parse_example(inputs, features)["text"]
        scores = self.encoded(**self.tokenize(text))["probabilities"]
        return {"classes": tf.tile(self.labels[None], [tf.shape(text)[0], 1]), "scores": scores}


def _warmup_records(bad: bool = False) -> list[bytes]:
    predict = predict_pb2.PredictRequest()
    predict.model_spec.signature_name = "no-such-signature" if bad else "serving_default"
    predict.inputs["text"].CopyFrom(tf.make_tensor_proto(["i am happy"]))
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.signature_name = "classify"
    classify.input.example_list.examples.add().features.feature["text"].bytes_list.value.append(
        b"so sad")
    return [prediction_log_pb2.PredictionLog(predict_log={"request": predict}).SerializeToString(),
            prediction_log_pb2.PredictionLog(
                classify_log={"request": classify}).SerializeToString()]


def write_fake_export(folder: Path, warmup: bool = True, bad_warmup: bool = False) -> Path:
    """Save the stand-in model to ``folder`` with a warm-up file."""
    model = FakeEmotionModel()
    tf.saved_model.save(model, str(folder), signatures={
        "serving_default": model.serve, "classify": model.classify, "tokenize": model.tokenize,
        "encoded": model.encoded, "encoded_int64": model.encoded_int64})
    if warmup:
        (folder / "assets.extra").mkdir()
        with tf.io.TFRecordWriter(str(folder / "assets.extra" / "tf_serving_warmup_requests")) as w:
            for record in _warmup_records(bad_warmup):
                w.write(record)
    return folder


def publish(template: Path, base: Path, version: int, name: str = "emotion") -> Path:
    """Copy a version into place the way the exporter does: temporary folder, then rename."""
    temporary = base / name / f".tmp-{version}"
    shutil.copytree(template, temporary)
    os.rename(temporary, base / name / str(version))
    return base / name / str(version)


@pytest.fixture(scope="module")
def fake_export(tmp_path_factory) -> Path:
    return write_fake_export(tmp_path_factory.mktemp("fake-export") / "1")


SHIPPED_SESSION_CONFIG = Path(__file__).resolve().parents[1] / "serving" / "session.config"


@pytest.fixture(scope="module")
def server(tmp_path_factory, fake_export):
    """The development server as the docs run it: with serving/session.config."""
    base = tmp_path_factory.mktemp("base")
    publish(fake_export, base, 1)
    config = ServingConfig(port=0, poll_interval=60,
                           session_config_file=str(SHIPPED_SESSION_CONFIG), **LIMITS)
    with start_server(base, config) as running:
        yield running


def test_the_server_runs_its_sessions_with_the_session_config(server):
    from tensorflow.core.protobuf import rewriter_config_pb2

    rewrite = server.store.session_config.graph_options.rewrite_options
    assert rewrite.function_optimization == rewriter_config_pb2.RewriterConfig.OFF
    loaded = server.store.servables["emotion"][1]
    assert loaded.servable.session._config.graph_options.rewrite_options.function_optimization \
        == rewriter_config_pb2.RewriterConfig.OFF


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.address) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture()
def client(server):
    with ServingClient(server.address, retries=0) as c:
        yield c
# endregion


def _predict_request(name="emotion", signature="", **inputs):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    for key, value in inputs.items():
        request.inputs[key].CopyFrom(value if isinstance(value, type(request.inputs[key]))
                                     else tf.make_tensor_proto(value))
    return request


def _classify_request(texts=(), signature="classify", feature="text"):
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "emotion"
    request.model_spec.signature_name = signature
    for text in texts:
        value = text if isinstance(text, bytes) else text.encode()
        request.input.example_list.examples.add().features.feature[
            feature].bytes_list.value.append(value)
    return request


def _rpc_error(call, request):
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    return info.value


# region client
def test_client_predict_returns_label_and_scores_per_text(client):
    predictions = client.predict(["I am so happy today", "i feel sad and gloomy", ""])
    assert [p.label for p in predictions] == ["joy", "sadness", "sadness"]
    for p in predictions:
        assert list(p.scores) == list(LABELS)
        assert sum(p.scores.values()) == pytest.approx(1.0, abs=1e-5)
        assert p.version == 1
    assert predictions[0].scores["joy"] > 0.9
    assert predictions[2].scores["joy"] == pytest.approx(1 / 6, abs=1e-6)


def test_client_classify_agrees_with_predict(client):
    texts = ["i adore you", "so angry right now", "scared of the dark"]
    by_predict, by_classify = client.predict(texts), client.classify(texts)
    assert [p.label for p in by_classify] == ["love", "anger", "fear"]
    for a, b in zip(by_predict, by_classify):
        assert a.label == b.label and a.version == b.version == 1
        assert b.scores == pytest.approx(a.scores, abs=1e-6)


def test_client_metadata_lists_the_export_signatures(client):
    metadata = client.metadata()
    assert metadata["model"] == "emotion" and metadata["version"] == 1
    signatures = metadata["signatures"]
    assert SIGNATURES <= set(signatures)
    default = signatures["serving_default"]
    assert default["inputs"] == {"text": {"dtype": "DT_STRING", "shape": [-1]}}
    assert default["outputs"]["label_id"]["dtype"] == "DT_INT64"
    assert default["outputs"]["probabilities"] == {"dtype": "DT_FLOAT", "shape": [-1, 6]}
    assert signatures["encoded_int64"]["inputs"]["input_ids"]["dtype"] == "DT_INT64"


def test_client_status_reports_the_available_version(client):
    assert client.status() == [{"version": 1, "state": "AVAILABLE", "error_code": "OK",
                                "error_message": ""}]


def test_query_returns_a_json_ready_result(server):
    import json

    result = query(ServingConfig(retries=0), ["i am glad", "so mad"], server=server.address,
                   api="classify")
    assert json.loads(json.dumps(result)) == result
    assert result["model"] == "emotion" and result["version"] == 1 and result["api"] == "classify"
    assert [p["label"] for p in result["predictions"]] == ["joy", "anger"]
    lines = format_query(result).splitlines()
    assert lines[0] == f"emotion version 1 at {server.address}"
    assert lines[1].startswith("joy") and lines[1].endswith("i am glad")


def test_client_checks_arguments_before_calling(server):
    with pytest.raises(ValueError, match="not both"):
        ServingClient(server.address, version=1, label="stable")
    with ServingClient(server.address) as client:
        with pytest.raises(ValueError, match="at least one text"):
            client.predict([])
        with pytest.raises(TypeError, match="must be strings"):
            client.predict(["ok", 3])
    with pytest.raises(ValueError, match="api must be one of"):
        query(ServingConfig(), ["x"], api="regress")
    assert parse_server("[::1]:9000") == ("::1", 9000)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_server("host:99999")


def test_client_error_names_server_model_and_code(server):
    with ServingClient(server.address, version=7, retries=3) as client:
        with pytest.raises(ServingError) as info:
            client.predict(["hello"])
    error = info.value
    assert error.code == grpc.StatusCode.NOT_FOUND and error.attempts == 1  # no retry
    message = str(error)
    assert server.address in message and "emotion@7" in message and "NOT_FOUND" in message
    assert "version 7" in message


def test_client_retries_unavailable_then_fails_quickly_with_a_clear_error():
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with ServingClient(f"127.0.0.1:{port}", retries=2, retry_backoff=0.05, timeout=2) as client:
        with pytest.raises(ServingError) as info:
            client.status()
    assert time.monotonic() - start < 5
    assert info.value.code == grpc.StatusCode.UNAVAILABLE and info.value.attempts == 3
    assert f"127.0.0.1:{port}" in str(info.value) and "Is the server running" in str(info.value)


def test_client_retries_until_the_server_comes_up(tmp_path, fake_export, caplog):
    publish(fake_export, tmp_path, 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    later = DevServer(tmp_path, ServingConfig(port=port, rest_port=None, poll_interval=60))
    timer = threading.Timer(0.5, later.start)
    timer.start()
    try:
        with caplog.at_level(logging.DEBUG, logger="tfemotion.serving"):
            with ServingClient(f"127.0.0.1:{port}", retries=8, retry_backoff=0.1) as client:
                assert client.predict(["so happy"])[0].label == "joy"
        assert any("UNAVAILABLE" in r.getMessage() for r in caplog.records)
    finally:
        timer.join()
        later.stop()
# endregion


# region bad requests
BAD_PREDICTS = {
    "wrong dtype": (dict(text=np.array([1.0], np.float32)), "INVALID_ARGUMENT",
                    "must be DT_STRING; got DT_FLOAT"),
    "wrong shape": (dict(text=[["a", "b"]]), "INVALID_ARGUMENT", "must have shape [-1]"),
    "missing input": ({}, "INVALID_ARGUMENT", "missing input(s) ['text']"),
    "unknown input": (dict(text=["a"], extra=["b"]), "INVALID_ARGUMENT", "unknown input(s)"),
    "empty batch": (dict(text=np.array([], object)), "INVALID_ARGUMENT", "empty batch"),
    "not UTF-8": (dict(text=[b"ok", b"\xff\xfe bad"]), "INVALID_ARGUMENT",
                  "input 'text'[1] is not valid UTF-8"),
    "100,000 characters": (dict(text=["a" * 100_000]), "INVALID_ARGUMENT",
                           "100,000 characters; the limit is 10,000"),
    "batch over the cap": (dict(text=["a"] * 9), "INVALID_ARGUMENT", "limit is 8"),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICTS))
def test_devserver_answers_bad_predict_requests_and_keeps_serving(stub, client, case):
    inputs, code, fragment = BAD_PREDICTS[case]
    error = _rpc_error(stub.Predict, _predict_request(**inputs))
    assert error.code().name == code and fragment in error.details()
    assert client.predict(["so happy"])[0].label == "joy"


def _with_spec(**spec):
    request = _predict_request(text=["a"])
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    return request


def _values_not_matching_shape():
    request = _predict_request(text=["a", "b"])
    request.inputs["text"].tensor_shape.dim[0].size = 3
    return request


def _ids(dtype, shape=(1, 3), high=5):
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape) % high + 1


BAD_OTHER_PREDICTS = {
    "no model name": (lambda: _with_spec(name=""), "INVALID_ARGUMENT", "ModelSpec.name is empty"),
    "unknown model": (lambda: _with_spec(name="nope"), "NOT_FOUND", "'nope' is not served"),
    "unknown version": (lambda: _with_spec(version=99), "NOT_FOUND", "version 99 of model"),
    "unknown label": (lambda: _with_spec(version_label="gold"), "INVALID_ARGUMENT",
                      "Unrecognized servable version label: 'gold'"),
    "unknown signature": (lambda: _with_spec(signature_name="nope"), "FAILED_PRECONDITION",
                          "\"nope\" not found"),
    "values do not match shape": (_values_not_matching_shape, "INVALID_ARGUMENT",
                                  "has 2 values for shape [3]"),
    "int64 ids to the int32 signature": (
        lambda: _predict_request(signature="encoded", input_ids=_ids(np.int64),
                                 attention_mask=_ids(np.int64)),
        "INVALID_ARGUMENT", "must be DT_INT32; got DT_INT64"),
    "inputs of different batch sizes": (
        lambda: _predict_request(signature="encoded", input_ids=_ids(np.int32, (2, 3)),
                                 attention_mask=_ids(np.int32, (1, 3))),
        "INVALID_ARGUMENT", "different batch sizes"),
    "ids out of the vocabulary (a TensorFlow error)": (
        lambda: _predict_request(signature="encoded", input_ids=_ids(np.int32) * 10**6,
                                 attention_mask=_ids(np.int32)),
        "INVALID_ARGUMENT", "indices"),
    "unknown output in output_filter": (
        lambda: _predict_request(text=["a"]).__class__(
            model_spec={"name": "emotion"}, inputs={"text": tf.make_tensor_proto(["a"])},
            output_filter=["logits"]),
        "INVALID_ARGUMENT", "output_filter names unknown output(s) ['logits']"),
    "bytes that are not a tf.Example": (
        lambda: _predict_request(signature="classify", inputs=[b"\xff\x00garbage"]),
        "INVALID_ARGUMENT", "not a serialized tf.Example"),
}


@pytest.mark.parametrize("case", sorted(BAD_OTHER_PREDICTS))
def test_devserver_answers_bad_model_specs_and_tensors(stub, client, case):
    build, code, fragment = BAD_OTHER_PREDICTS[case]
    error = _rpc_error(stub.Predict, build())
    assert error.code().name == code and fragment in error.details(), error.details()
    assert client.predict(["so sad"])[0].label == "sadness"


def test_devserver_answers_bad_classify_requests(stub, client):
    cases = [
        (_classify_request(["ok"], signature=""), "FAILED_PRECONDITION",
         "signature_name='classify'"),
        (_classify_request([]), "INVALID_ARGUMENT", "Input is empty"),
        (_classify_request(["ok"], feature="body"), "INVALID_ARGUMENT",
         "bytes feature 'text'"),
        (_classify_request([b"\xc3\x28"]), "INVALID_ARGUMENT", "not valid UTF-8"),
        (_classify_request(["x" * 100_000]), "INVALID_ARGUMENT", "100,000 characters"),
        (_classify_request(["ok"] * 9), "INVALID_ARGUMENT", "limit is 8"),
    ]
    for request, code, fragment in cases:
        error = _rpc_error(stub.Classify, request)
        assert error.code().name == code and fragment in error.details(), error.details()
    assert client.classify(["so glad"])[0].label == "joy"


def test_devserver_answers_bad_metadata_status_and_oversized_requests(server, stub, client):
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "emotion"
    error = _rpc_error(stub.GetModelMetadata, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "signature_def" in error.details()
    with grpc.insecure_channel(server.address) as channel:
        status = get_model_status_pb2.GetModelStatusRequest(model_spec={"name": "nope"})
        error = _rpc_error(model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus, status)
    assert error.code() == grpc.StatusCode.NOT_FOUND and "'nope'" in error.details()
    huge = _predict_request(text=["a" * (LIMITS["max_request_bytes"] + 1)])
    error = _rpc_error(stub.Predict, huge)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    regress = regression_pb2.RegressionRequest(model_spec={"name": "emotion"})
    assert _rpc_error(stub.Regress, regress).code() == grpc.StatusCode.UNIMPLEMENTED
    assert client.status()[0]["state"] == "AVAILABLE"
# endregion


# region versions
def _wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_devserver_picks_up_a_new_version_without_restart(tmp_path, fake_export):
    publish(fake_export, tmp_path, 1)
    config = ServingConfig(port=0, poll_interval=0.1)
    with start_server(tmp_path, config) as server, ServingClient(server.address) as client:
        assert client.predict(["so happy"])[0].version == 1
        publish(fake_export, tmp_path, 2)
        assert _wait_for(lambda: client.predict(["so happy"])[0].version == 2)
        assert [(s["version"], s["state"]) for s in client.status()] == [(1, "END"),
                                                                          (2, "AVAILABLE")]


def test_devserver_ignores_temporary_and_unfinished_folders(tmp_path, fake_export):
    publish(fake_export, tmp_path, 1)
    with start_server(tmp_path, ServingConfig(port=0, poll_interval=60)) as server:
        shutil.copytree(fake_export, tmp_path / "emotion" / ".tmp-5")
        shutil.copytree(fake_export, tmp_path / "emotion" / "6.partial")
        shutil.copytree(fake_export / "variables", tmp_path / "emotion" / "7" / "variables")
        server.refresh()
        assert server.models()["emotion"]["versions"] == {1: "AVAILABLE"}
        shutil.copytree(fake_export, tmp_path / "emotion" / "8")  # written in place, not renamed
        server.refresh()  # first sight: wait until its files stop changing
        assert server.models()["emotion"]["versions"] == {1: "AVAILABLE"}
        server.refresh()
        assert server.models()["emotion"]["versions"] == {1: "END", 8: "AVAILABLE"}


def test_devserver_keeps_serving_when_a_new_version_fails_to_load(tmp_path, fake_export):
    publish(fake_export, tmp_path, 1)
    with start_server(tmp_path, ServingConfig(port=0, poll_interval=60)) as server, \
            ServingClient(server.address) as client:
        bad_warmup = write_fake_export(tmp_path / "bad-warmup", bad_warmup=True)
        publish(bad_warmup, tmp_path, 2)
        broken = publish(fake_export, tmp_path, 3)
        (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
        for _ in range(2):
            server.refresh()
        states = {s["version"]: s for s in client.status()}
        assert states[1]["state"] == "AVAILABLE"
        assert states[2]["state"] == states[3]["state"] == "END"
        assert "warm-up record 0" in states[2]["error_message"]
        assert "no-such-signature" in states[2]["error_message"]
        assert "Loading" in states[3]["error_message"]
        assert client.predict(["so happy"])[0].version == 1


MODEL_CONFIG = """
model_config_list {
  config {
    name: "emotion"
    base_path: "/models/emotion"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: %d }
    version_labels { key: "canary" value: 2 }
  }
}
"""


def test_devserver_serves_version_labels_and_follows_config_edits(tmp_path, fake_export):
    base = tmp_path / "models"
    for version in (1, 2):
        publish(fake_export, base, version)
    config_file = tmp_path / "models.config"
    config_file.write_text(MODEL_CONFIG % 1)
    config = ServingConfig(port=0, poll_interval=60, model_config_file=str(config_file))
    with start_server(base, config) as server:
        def version(**spec):
            with ServingClient(server.address, **spec) as client:
                return client.predict(["so happy"])[0].version

        assert server.models()["emotion"]["labels"] == {"stable": 1, "canary": 2}
        assert (version(label="stable"), version(label="canary"), version()) == (1, 2, 2)
        assert version(version=1) == 1
        config_file.write_text(MODEL_CONFIG % 2)  # promote the canary
        server.refresh()
        assert version(label="stable") == 2


def test_devserver_serves_several_models(tmp_path, fake_export, caplog):
    publish(fake_export, tmp_path, 1)
    (tmp_path / "other").mkdir()
    publish(fake_export, tmp_path, 3, name="other")
    (tmp_path / "notes").mkdir()  # not a model: no version folders
    with caplog.at_level(logging.INFO, logger="tfemotion"):
        server = start_server(tmp_path, ServingConfig(port=0, poll_interval=60))
    try:
        assert set(server.models()) == {"emotion", "other"}
        with ServingClient(server.address, name="other") as client:
            assert client.classify(["amazed"])[0].label == "surprise"
            assert client.status()[0]["version"] == 3
        assert any("(2 warm-up requests)" in r.getMessage() for r in caplog.records)
    finally:
        server.stop()
# endregion


def test_devserver_on_a_busy_port_fails_before_loading_any_model(tmp_path, server, fake_export,
                                                                 monkeypatch):
    publish(fake_export, tmp_path, 1)
    port = int(server.address.rsplit(":", 1)[1])
    busy = DevServer(tmp_path, ServingConfig(port=port, rest_port=None))
    monkeypatch.setattr(busy.store, "refresh",
                        lambda **_: pytest.fail("loaded the models before binding the port"))
    with pytest.raises(OSError, match="choose another with --port"):
        busy.start()


def test_devserver_refuses_bad_arguments_and_busy_ports(tmp_path, server):
    with pytest.raises(ValueError, match="base_path must be a folder"):
        DevServer(tmp_path / "missing")
    port = int(server.address.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="Cannot bind"):
        DevServer(tmp_path, ServingConfig(port=port, rest_port=None)).start()
    bad_config = tmp_path / "models.config"
    bad_config.write_text("model_config_list { config { nme: 'emotion' } }")
    for path, message in ((tmp_path / "none.config", "Cannot read the model config"),
                          (bad_config, "nme")):
        with pytest.raises(ValueError, match=message):
            DevServer(tmp_path, ServingConfig(model_config_file=str(path)))
    bad_session = tmp_path / "session.config"
    bad_session.write_text("graph_options { rewrite_options { function_optimization: MAYBE } }")
    with pytest.raises(ValueError, match=r"session config .*session.config, line 1.*MAYBE"):
        DevServer(tmp_path, ServingConfig(session_config_file=str(bad_session)))
    assert ServingConfig(port=0).port == 0
    with pytest.raises(ValueError, match="port must be in 0..65535"):
        ServingConfig(port=70000)
    with pytest.raises(ValueError, match="poll_interval"):
        ServingConfig(poll_interval=0)


def test_prediction_to_dict_is_plain():
    p = Prediction("t", "joy", {"joy": 1.0}, 3)
    assert p.to_dict() == {"text": "t", "label": "joy", "scores": {"joy": 1.0}, "version": 3}


# region a real export of a tiny model
@pytest.fixture(scope="module")
def real_export(tmp_path_factory, tiny_bert_dir):
    """A tiny 6-label BERT classifier exported by tfemotion.export (verification off: the
    export's own tests check it; here it only has to be served)."""
    export = pytest.importorskip("tfemotion.export")
    from transformers import AutoTokenizer, TFBertForSequenceClassification

    from tfemotion.config import ExportConfig

    root = tmp_path_factory.mktemp("real-export")
    model = TFBertForSequenceClassification.from_pretrained(
        tiny_bert_dir, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)})
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    report = export.export_model(root / "model", ExportConfig(base_path=str(root / "base"),
                                                              verify=False))
    return root / "base", model, tokenizer, report, signature_table()


def test_real_export_served_over_grpc_matches_the_keras_model(real_export):
    base, model, tokenizer, report, signatures = real_export
    texts = ["i feel happy today", "I am SO scared…", "Ça va? 中文 😀", "", "sad " * 80]
    with start_server(base, ServingConfig(port=0, poll_interval=60)) as server, \
            ServingClient(server.address) as client:
        predicted, classified = client.predict(texts), client.classify(texts)
        metadata = client.metadata()
    encoded = tokenizer(texts, truncation=True, max_length=report["max_length"], padding=True,
                        return_tensors="tf")
    logits = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"],
                   training=False).logits
    expected = tf.nn.softmax(logits, axis=-1).numpy()
    for p, c, row in zip(predicted, classified, expected):
        assert list(p.scores) == list(LABELS) and p.version == report["version"]
        np.testing.assert_allclose(list(p.scores.values()), row, atol=1e-5)
        assert p.label == LABELS[int(np.argmax(row))] == c.label
        assert c.scores == pytest.approx(p.scores, abs=1e-6)
    dtypes = {"string": "DT_STRING", "int32": "DT_INT32", "int64": "DT_INT64",
              "float32": "DT_FLOAT"}
    assert set(metadata["signatures"]) == set(signatures)
    for name, spec in signatures.items():
        for side in ("inputs", "outputs"):
            served = metadata["signatures"][name][side]
            assert {k: v["dtype"] for k, v in served.items()} == {
                k: dtypes[v] for k, v in spec[side].items()}
# endregion
