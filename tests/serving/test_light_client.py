"""The light client (client/, ``tfemotion_client``): its generated protos beside TensorFlow's,
its requests byte for byte TF Serving's, its tensors read as TensorFlow reads them, its calls and
its command against the development server, and nothing heavy imported."""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from support import EMOTIONS, REPO
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, predict_pb2)

from tfemotion_client import ServingClient, ServingError, client as light, messages, tensors
from tfemotion_client.protos.tensorflow_serving.apis import predict_pb2 as light_predict_pb2

CLIENT = REPO / "client"
QUERY = Path(sys.executable).parent / "tfemotion-query"
# (texts, version, label): the model specs a client sends.
REQUESTS = [(["i feel so happy today"], None, None),
            (["Ça va? 中文 😀", "", "sad " * 50], 3, None),
            (["so mad"], None, "stable")]


# region Generated protos


def test_light_client_imports_neither_tensorflow_keras_torch_nor_numpy():
    code = ("import sys, tfemotion_client, tfemotion_client.cli\n"
            "from tfemotion_client.protos.tensorflow_serving.apis import "
            "prediction_service_pb2_grpc, model_service_pb2_grpc\n"
            "from tfemotion_client.messages import predict_request\n"
            "predict_request(['so happy'], 'emotion').SerializeToString()\n"
            "heavy = ('tensorflow', 'keras', 'tf_keras', 'torch', 'numpy', 'tfemotion')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_generated_protos_keep_tf_serving_names_in_a_pool_beside_tensorflow():
    """TensorFlow and tensorflow-serving-api 2.21 are loaded in this process: their predict.proto
    differs from 2.20's, which protobuf's default pool would refuse as a duplicate file."""
    from google.protobuf import descriptor_pool

    from tfemotion_client.protos import POOL

    ours, theirs = light_predict_pb2.PredictRequest, predict_pb2.PredictRequest
    assert ours.DESCRIPTOR.full_name == theirs.DESCRIPTOR.full_name
    assert ours.DESCRIPTOR.file.name == theirs.DESCRIPTOR.file.name
    assert ours.DESCRIPTOR.file.pool is POOL is not descriptor_pool.Default()
    assert theirs.DESCRIPTOR.file.pool is descriptor_pool.Default()
    assert ours is not theirs and ours.__module__.startswith("tfemotion_client.protos.")
    with pytest.raises(TypeError):  # the pools' messages do not mix; their bytes do
        theirs().CopyFrom(ours())


@pytest.mark.integration  # a Python process of TF Serving's environment
def test_generated_protos_hold_the_descriptors_of_the_release_wheels(serving_python):
    """What ``make client-protos`` would write: every committed module holds the descriptor of
    its file in the wheels of serving/.env's release (.venv-serving), byte for byte."""
    if not serving_python:
        pytest.skip("needs TF Serving's environment (make test provides it)")
    regenerate = _regenerate_module()
    site = subprocess.run([serving_python, "-c", "import sysconfig; "
                           "print(sysconfig.get_paths()['purelib'])"], capture_output=True,
                          text=True, check=True, timeout=60).stdout.strip()
    release = regenerate.serialized_files(Path(site))
    names, _ = regenerate.closure(release, regenerate.SERVICES)
    committed = {}
    for path in (CLIENT / "tfemotion_client" / "protos").rglob("*_pb2.py"):
        data = regenerate._serialized_descriptor(path)
        committed[path.relative_to(CLIENT / "tfemotion_client" / "protos").as_posix()
                  .removesuffix("_pb2.py") + ".proto"] = data
    assert sorted(committed) == sorted(names)
    assert {name: release[name] for name in names} == committed
    release_version = regenerate.installed_version(Path(site), "tensorflow-serving-api")
    assert f"TF_SERVING_VERSION={release_version}\n" in (REPO / "serving" / ".env").read_text()


def _regenerate_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("regenerate", CLIENT / "regenerate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# endregion
# region Requests: the bytes of TF Serving's messages


def _tensorflow_requests(texts, version, label):
    """The requests as tfemotion's client built them with tensorflow-serving-api and TensorFlow."""
    def spec(request, signature=None):
        request.model_spec.name = "emotion"
        if version is not None:
            request.model_spec.version.value = version
        elif label is not None:
            request.model_spec.version_label = label
        if signature:
            request.model_spec.signature_name = signature

    predict = predict_pb2.PredictRequest()
    spec(predict, "serving_default")
    predict.inputs["text"].CopyFrom(tf.make_tensor_proto(texts, dtype=tf.string))
    classify = classification_pb2.ClassificationRequest()
    spec(classify, "classify")
    for text in texts:
        example = classify.input.example_list.examples.add()
        example.features.feature["text"].bytes_list.value.append(text.encode("utf-8"))
    status = get_model_status_pb2.GetModelStatusRequest()
    spec(status)
    metadata = get_model_metadata_pb2.GetModelMetadataRequest()
    spec(metadata)
    metadata.metadata_field.append("signature_def")
    return [predict, classify, status, metadata]


def _light_requests(texts, version, label):
    from tfemotion_client.protos.tensorflow_serving.apis import (get_model_metadata_pb2 as meta,
                                                                 get_model_status_pb2 as status)

    requests = [messages.predict_request(texts, "emotion", version=version, label=label),
                messages.classify_request(texts, "emotion", version=version, label=label),
                status.GetModelStatusRequest(), meta.GetModelMetadataRequest()]
    for request in requests[2:]:
        messages.model_spec(request.model_spec, "emotion", version, label)
    requests[3].metadata_field.append("signature_def")
    return requests


@pytest.mark.parametrize("texts, version, label", REQUESTS)
def test_requests_are_byte_equal_to_tensorflow_serving_api_ones(texts, version, label):
    ours, theirs = _light_requests(texts, version, label), _tensorflow_requests(texts, version,
                                                                                 label)
    for mine, real in zip(ours, theirs):
        assert mine.SerializeToString() == real.SerializeToString(), type(real).__name__
        assert mine.SerializeToString(deterministic=True) == real.SerializeToString(
            deterministic=True)


# In TF Serving's environment, its release's tensorflow-serving-api messages, without loading
# TensorFlow itself (a package stub stands in for `tensorflow`, whose *_pb2 modules are plain):
# each request built as tfemotion's client built it, and ours parsed and written again.
_RELEASE_REQUESTS = r"""
import json, os, sys, sysconfig, types
package = types.ModuleType("tensorflow")
package.__path__ = [os.path.join(sysconfig.get_paths()["purelib"], "tensorflow")]
sys.modules["tensorflow"] = package
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, predict_pb2)
from tensorflow.core.framework import types_pb2
results = []
for case in json.load(sys.stdin):
    texts, version, label = case["texts"], case["version"], case["label"]
    classes = [predict_pb2.PredictRequest, classification_pb2.ClassificationRequest,
               get_model_status_pb2.GetModelStatusRequest,
               get_model_metadata_pb2.GetModelMetadataRequest]
    built = [cls() for cls in classes]
    for request, signature in zip(built, ["serving_default", "classify", None, None]):
        request.model_spec.name = "emotion"
        if version is not None:
            request.model_spec.version.value = version
        elif label is not None:
            request.model_spec.version_label = label
        if signature:
            request.model_spec.signature_name = signature
    tensor = built[0].inputs["text"]
    tensor.dtype = types_pb2.DT_STRING
    tensor.tensor_shape.dim.add(size=len(texts))
    tensor.string_val.extend(text.encode("utf-8") for text in texts)
    for text in texts:
        example = built[1].input.example_list.examples.add()
        example.features.feature["text"].bytes_list.value.append(text.encode("utf-8"))
    built[3].metadata_field.append("signature_def")
    parsed = [cls.FromString(bytes.fromhex(data)) for cls, data in zip(classes, case["ours"])]
    results.append({"built": [r.SerializeToString().hex() for r in built],
                    "parsed": [r.SerializeToString().hex() for r in parsed]})
print(json.dumps(results))
"""


@pytest.mark.integration  # a Python process of TF Serving's environment
def test_requests_are_byte_equal_to_the_release_tensorflow_serving_api_ones(serving_python):
    if not serving_python:
        pytest.skip("needs TF Serving's environment (make test provides it)")
    cases = [{"texts": texts, "version": version, "label": label,
              "ours": [r.SerializeToString().hex() for r in _light_requests(texts, version, label)]}
             for texts, version, label in REQUESTS]
    result = subprocess.run([serving_python, "-c", _RELEASE_REQUESTS], input=json.dumps(cases),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for case, answer in zip(cases, json.loads(result.stdout)):
        assert answer["built"] == case["ours"] == answer["parsed"]


# endregion
# region Tensors without NumPy


@pytest.mark.parametrize("values, dtype", [
    ([[0.25, -1.5, 3.0], [1e-8, 0.0, 7.0]], np.float32), ([[1.0, 2.5]], np.float64),
    ([3, -7, 2 ** 31 - 1], np.int32), ([2 ** 40, -5], np.int64), ([1, 255], np.uint8),
    ([-128, 127], np.int8), ([-3, 300], np.int16), ([65535], np.uint16), ([2 ** 32 - 1], np.uint32),
    ([2 ** 64 - 1], np.uint64), ([[True, False]], np.bool_), ([0.5, -2.0, 65504.0], np.float16),
    ([[b"joy", b""], [b"\xc3\xa9", b"x"]], object), (4.5, np.float32), ([], np.float32),
])
def test_tensors_are_read_as_tensorflow_reads_them(values, dtype):
    array = np.array(values, dtype=dtype)
    packed = tf.make_tensor_proto(array)  # numbers packed in tensor_content, strings typed
    typed = tf.make_tensor_proto(array)
    if typed.tensor_content:  # the same numbers in the typed field, as TF Serving's C++ writes
        typed.ClearField("tensor_content")
        field = tensors._LAYOUT[typed.dtype][0]
        flat = array.reshape(-1)
        getattr(typed, field).extend(flat.view(np.uint16).tolist() if dtype == np.float16
                                     else flat.tolist())
    for proto in (packed, typed):
        light_tensor = tensors.tensor_pb2.TensorProto.FromString(proto.SerializeToString())
        assert tensors.to_list(light_tensor) == tf.make_ndarray(proto).tolist()
        assert tensors.shape(light_tensor) == list(array.shape)


def test_tensors_read_bfloat16_and_short_typed_fields_as_tensorflow_does():
    bfloat16 = tf.make_tensor_proto(tf.constant([[1.5, -0.0078125, 256.0]], tf.bfloat16))
    short = tf.make_tensor_proto(np.float32([0.5, 2.0]))
    short.ClearField("tensor_content")
    short.float_val.extend([0.5, 2.0])
    short.tensor_shape.dim[0].size = 5  # TensorFlow repeats the last value
    empty = tf.make_tensor_proto(np.int64([7, 7, 7]))
    empty.ClearField("tensor_content")  # no values at all: zeros
    cases = ((bfloat16, [[1.5, -0.0078125, 256.0]]), (short, [0.5, 2.0, 2.0, 2.0, 2.0]),
             (empty, [0, 0, 0]))
    for proto, expected in cases:
        light_tensor = tensors.tensor_pb2.TensorProto.FromString(proto.SerializeToString())
        assert tensors.to_list(light_tensor) == expected
        assert tf.make_ndarray(proto).astype(np.float64).tolist() == expected


def test_tensors_refuse_what_they_cannot_read():
    complex_tensor = tensors.tensor_pb2.TensorProto(dtype=tensors.types_pb2.DT_COMPLEX64)
    with pytest.raises(ValueError, match="dtype=DT_COMPLEX64"):
        tensors.to_list(complex_tensor)
    too_many = tensors.tensor_pb2.TensorProto(dtype=tensors.types_pb2.DT_INT64, int64_val=[1, 2])
    too_many.tensor_shape.dim.add(size=1)
    with pytest.raises(ValueError, match="holds 1 values. Received: 2 values"):
        tensors.to_list(too_many)
    cut = tensors.tensor_pb2.TensorProto(dtype=tensors.types_pb2.DT_FLOAT, tensor_content=b"\0" * 6)
    cut.tensor_shape.dim.add(size=2)
    with pytest.raises(ValueError, match="holds 8 bytes. Received: 6 bytes"):
        tensors.to_list(cut)


# endregion
# region Calls to the development server


def test_light_client_predicts_classifies_and_reads_status_and_metadata(server):
    with ServingClient(server.address, retries=0) as client:
        predicted = client.predict(["I am so happy today", "so angry right now"])
        classified = client.classify(["I am so happy today", "so angry right now"])
        status, metadata = client.status(), client.metadata()
    assert [p.label for p in predicted] == [c.label for c in classified] == ["joy", "anger"]
    for p, c in zip(predicted, classified):
        assert list(p.scores) == list(EMOTIONS) and p.version == c.version == 1
        assert math.isclose(sum(p.scores.values()), 1.0, abs_tol=1e-5)
        assert c.scores == pytest.approx(p.scores, abs=1e-6)
    assert status == [{"version": 1, "state": "AVAILABLE", "error_code": "OK",
                       "error_message": ""}]
    assert metadata["signatures"]["serving_default"]["outputs"]["probabilities"] == {
        "dtype": "DT_FLOAT", "shape": [-1, 6]}


def test_light_client_reports_the_server_errors(server):
    with ServingClient(server.address, version=7, retries=3) as client:
        with pytest.raises(ServingError, match=r"NOT_FOUND: Servable not found for request: "
                                               r"Specific\(emotion, 7\)") as info:
            client.predict(["so happy"])
    assert info.value.attempts == 1 and "emotion@7" in str(info.value)
    with ServingClient(server.address, retries=0) as client:
        with pytest.raises(ServingError, match="INVALID_ARGUMENT: input 'text' holds a batch of "
                                               "9; the limit is 8"):
            client.predict(["so happy"] * 9)
    with ServingClient(server.address, signature="tokenize", retries=0) as client:
        with pytest.raises(ServingError, match=r"BAD_RESPONSE: signature 'tokenize' did not "
                                               r"return \['label', 'probabilities'\]"):
            client.predict(["so happy"])


# endregion
# region The tfemotion-query command


def _query(*args, stdin=None):
    return subprocess.run([str(QUERY), *args], capture_output=True, text=True, timeout=60,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          env={**os.environ, "TFEMOTION_DEBUG": ""})


def test_query_command_prints_a_line_per_text_and_exits_as_tfemotion_query(server):
    result = _query("--server", server.address, "so happy", "i feel sad and gloomy")
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header == f"emotion version 1 at {server.address}"
    assert [line.split()[0] for line in lines] == ["joy", "sadness"]
    assert lines[0].endswith("  so happy")
    result = _query("--server", server.address, "--api", "classify", "--json", "--batch-size",
                    "2", stdin="so mad\n\nscared of the dark\n")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["text"] for a in answers] == ["so mad", "", "scared of the dark"]
    assert answers[0]["label"] == "anger" and answers[2]["label"] == "fear"
    assert list(answers[0]["scores"]) == list(EMOTIONS) and answers[0]["version"] == 1
    missing = _query("--server", server.address, "--version", "7", "so happy")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.startswith("tfemotion-query: error: Predict on model 'emotion@7' at ")
    assert "Traceback" not in missing.stderr
    usage = _query("--version", "1", "--label", "stable", "so happy")
    assert usage.returncode == 2 and "not allowed with argument --version" in usage.stderr


def _options(parser: argparse.ArgumentParser) -> dict:
    """Every option of a parser: its flags, type, choices, nargs and the value it has by default
    (a flag that leaves it out takes ServingConfig's default)."""
    from tfemotion.config import ServingConfig

    options = {}
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        default = action.default
        if default is argparse.SUPPRESS:
            default = getattr(ServingConfig(), action.dest)
        options[action.dest] = (tuple(action.option_strings), getattr(action.type, "__name__",
                                                                      action.type),
                                action.choices and tuple(action.choices), action.nargs, default)
    groups = [sorted(a.dest for a in g._group_actions) for g in parser._mutually_exclusive_groups]
    return {"options": options, "exclusive": groups}


def test_query_command_takes_the_flags_of_tfemotion_query():
    from tfemotion.cli import build_parser
    from tfemotion_client.cli import build_parser as build_query_parser

    subcommands = next(a for a in build_parser()._actions
                       if isinstance(a, argparse._SubParsersAction))
    assert _options(build_query_parser()) == _options(subcommands.choices["query"])


def test_client_settings_and_keys_are_tfemotions():
    from tfemotion.config import ServingConfig
    from tfemotion.export import signatures

    config = ServingConfig()
    assert light.DEFAULT_SERVER == f"{config.host}:{config.port}"
    assert (light.DEFAULT_NAME, light.DEFAULT_TIMEOUT, light.DEFAULT_RETRIES,
            light.DEFAULT_RETRY_BACKOFF) == (config.name, config.timeout, config.retries,
                                             config.retry_backoff)
    for key in ("PREDICT", "CLASSIFY", "TEXT", "LABEL", "LABELS", "PROBABILITIES"):
        assert getattr(messages, key) == getattr(signatures, key), key


def test_query_command_reads_texts_as_tfemotion_does(tmp_path):
    from tfemotion.data import read_texts
    from tfemotion_client.cli import read_texts as read_query_texts

    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_bytes(b"\xef\xbb\xbfso happy\r\n\nso sad")
    bad.write_bytes(b"so happy\nso \xff sad\n")
    assert list(read_query_texts(good)) == list(read_texts(good)) == ["so happy", "", "so sad"]
    errors = []
    for read in (read_texts, read_query_texts):
        with pytest.raises(ValueError) as info:
            list(read(bad))
        errors.append(str(info.value))
    assert errors[0] == errors[1] and "bad.txt:2: bytes that are not UTF-8 (byte 0xff" in errors[0]


# endregion
