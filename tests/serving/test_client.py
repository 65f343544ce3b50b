"""The gRPC client against the development server: predict, classify, metadata, status, retries."""

from __future__ import annotations

import logging
import threading

import grpc
import numpy as np
import pytest
import tensorflow as tf
from support import EMOTIONS as LABELS
from support import FAKE_SIGNATURES as SIGNATURES
from support import publish, reserved_ports

from tfemotion.config import ServingConfig
from tfemotion.export.signatures import signature_table
from tfemotion.serving.server import DevServer, start_server
from tfemotion.serving.client import Prediction, ServingClient, ServingError, format_query, \
    parse_server, query


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
    assert "Servable not found for request: Specific(emotion, 7)" in message


def test_client_retries_unavailable_then_fails_quickly_with_a_clear_error(monkeypatch):
    from tfemotion_client import client as client_module  # the light client retries

    waits = []
    monkeypatch.setattr(client_module.time, "sleep", waits.append)
    with reserved_ports(1) as (port,), \
            ServingClient(f"127.0.0.1:{port}", retries=2, retry_backoff=0.05, timeout=2) as client:
        with pytest.raises(ServingError) as info:  # nothing listens there: refused
            client.status()
    # Two retries after backoffs of at most 0.05 s and 0.1 s (jittered down to half), no more.
    assert len(waits) == 2 and 0.025 <= waits[0] <= 0.05 and 0.05 <= waits[1] <= 0.1
    assert info.value.code == grpc.StatusCode.UNAVAILABLE and info.value.attempts == 3
    assert f"127.0.0.1:{port}" in str(info.value) and "Is the server running" in str(info.value)


def test_client_retries_until_the_server_comes_up(tmp_path, fake_export, caplog):
    """The server starts once the client has been refused (its first retry is logged); the
    client's retries (backoffs doubling from 0.1 s, 10 of them: a minute or more) outlast the
    start."""
    publish(fake_export, tmp_path, 1)
    refused = threading.Event()

    class FirstRetry(logging.Handler):
        def emit(self, record):
            if "UNAVAILABLE" in record.getMessage():
                refused.set()

    watcher = FirstRetry()
    logging.getLogger("tfemotion_client").addHandler(watcher)
    with reserved_ports(1) as (port,):  # refused until the server listens, and kept for it
        later = DevServer(tmp_path, ServingConfig(port=port, rest_port=None, poll_interval=60))
        starter = threading.Thread(target=lambda: refused.wait(60) and later.start())
        starter.start()
        try:
            with caplog.at_level(logging.DEBUG, logger="tfemotion_client"):
                with ServingClient(f"127.0.0.1:{port}", retries=10, retry_backoff=0.1) as client:
                    assert client.predict(["so happy"])[0].label == "joy"
            assert refused.is_set()
        finally:
            logging.getLogger("tfemotion_client").removeHandler(watcher)
            starter.join()
            later.stop()


def test_prediction_to_dict_is_plain():
    p = Prediction("t", "joy", {"joy": 1.0}, 3)
    assert p.to_dict() == {"text": "t", "label": "joy", "scores": {"joy": 1.0}, "version": 3}


def test_a_real_export_served_over_grpc_answers_like_the_keras_model(verified_export):
    from tfemotion.prediction import load_classifier

    report = verified_export
    base, signatures = report["base_path"], signature_table()
    model, tokenizer = load_classifier(report["source"])
    texts = ["i feel happy today", "I am SO scared…", "Ça va? 中文 😀", "", "sad " * 80]
    with start_server(base, ServingConfig(port=0, poll_interval=60)) as server, \
            ServingClient(server.address) as client:
        predicted, classified = client.predict(texts), client.classify(texts)
        metadata = client.metadata()
    encoded = tokenizer(texts, truncation=True, max_length=report["max_length"], padding=True,
                        return_tensors="tf")
    logits = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"],
                   training=False).logits
    # the export is calibrated: its probabilities are those of logits / T
    expected = tf.nn.softmax(logits / report["temperatures"], axis=-1).numpy()
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
