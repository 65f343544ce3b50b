"""Bad Predict, Classify, metadata and status requests get a status and a message; the server keeps serving."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from support import LIMITS
from tensorflow_serving.apis import (classification_pb2, get_model_metadata_pb2,
                                     get_model_status_pb2, model_service_pb2_grpc, predict_pb2,
                                     regression_pb2)


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


# (inputs, gRPC code, the start of the message). Where TF Serving 2.20 has a text it comes
# first, as written in the source named beside it; the caps TF Serving lacks are ours.
BAD_PREDICTS = {
    "wrong dtype": (dict(text=np.array([1.0], np.float32)), "INVALID_ARGUMENT",
                    "input 'text' must be DT_STRING; got DT_FLOAT"),
    "wrong shape": (dict(text=[["a", "b"]]), "INVALID_ARGUMENT", "input 'text' must have shape"),
    # predict_util.cc, VerifyRequestInputsSize
    "missing input": ({}, "INVALID_ARGUMENT",
                      "input size does not match signature: 0!=1 len({}) != len({text}). "
                      "Sent extra: {}. Missing but required: {text}."),
    "unknown input": (dict(text=["a"], extra=["b"]), "INVALID_ARGUMENT",
                      "input size does not match signature: 2!=1 len({extra,text}) != "
                      "len({text}). Sent extra: {extra}. Missing but required: {}."),
    # predict_util.cc, PreProcessPrediction: a name not in the signature, as many inputs
    "another input's name": (dict(body=["a"]), "INVALID_ARGUMENT",
                             "input tensor alias not found in signature: body. Inputs "
                             "expected to be in the set {text}."),
    "empty batch": (dict(text=np.array([], object)), "INVALID_ARGUMENT",
                    "input 'text' is an empty batch"),
    "100,000 characters": (dict(text=["a" * 100_000]), "INVALID_ARGUMENT",
                           "input 'text'[0] has 100,000 characters; the limit is 10,000"),
    "batch over the cap": (dict(text=["a"] * 9), "INVALID_ARGUMENT",
                           "input 'text' holds a batch of 9; the limit is 8"),
}


BAD_OTHER_PREDICTS = {
    # server_core.cc, ServableRequestFromModelSpec and GetModelVersionForLabel
    "no model name": (lambda: _with_spec(name=""), "INVALID_ARGUMENT",
                      "ModelSpec has no name specified."),
    "unknown label": (lambda: _with_spec(version_label="gold"), "INVALID_ARGUMENT",
                      "Unrecognized servable version label: gold"),
    # basic_manager.cc, GetUntypedServableHandle; manager.h, ServableRequest::DebugString
    "unknown model": (lambda: _with_spec(name="nope"), "NOT_FOUND",
                      "Servable not found for request: Latest(nope)"),
    "unknown version": (lambda: _with_spec(version=99), "NOT_FOUND",
                        "Servable not found for request: Specific(emotion, 99)"),
    # predict_impl.cc
    "no model spec": (lambda: predict_pb2.PredictRequest(), "INVALID_ARGUMENT",
                      "Missing ModelSpec"),
    # predict_util.cc, RunPredict
    "unknown signature": (lambda: _with_spec(signature_name="nope"), "FAILED_PRECONDITION",
                          'Serving signature key "nope" not found.'),
    "values do not match shape": (_values_not_matching_shape, "INVALID_ARGUMENT",
                                  "input 'text' has 2 values for shape [3]"),
    "int64 ids to the int32 signature": (
        lambda: _predict_request(signature="encoded", input_ids=_ids(np.int64),
                                 attention_mask=_ids(np.int64)),
        "INVALID_ARGUMENT", "input 'attention_mask' must be DT_INT32; got DT_INT64"),
    "inputs of different batch sizes": (
        lambda: _predict_request(signature="encoded", input_ids=_ids(np.int32, (2, 3)),
                                 attention_mask=_ids(np.int32, (1, 3))),
        "INVALID_ARGUMENT", "inputs have different batch sizes"),
    # TensorFlow's error on a CPU (on a GPU, tf.gather gives zeros for ids out of range)
    "ids out of the vocabulary": (
        lambda: _predict_request(signature="encoded", input_ids=_ids(np.int32) * 10**6,
                                 attention_mask=_ids(np.int32)),
        "INVALID_ARGUMENT", "Graph execution error:\n\nindices[0,0] = 1000000 is not in [0, 4096)"),
    # predict_util.cc, PreProcessPrediction
    "unknown output in output_filter": (
        lambda: _predict_request(text=["a"]).__class__(
            model_spec={"name": "emotion"}, inputs={"text": tf.make_tensor_proto(["a"])},
            output_filter=["logits"]),
        "INVALID_ARGUMENT", "output tensor alias not found in signature: logits Outputs "
                            "expected to be in the set {label,label_id,probabilities}."),
    "an output twice in output_filter": (
        lambda: _predict_request(text=["a"]).__class__(
            model_spec={"name": "emotion"}, inputs={"text": tf.make_tensor_proto(["a"])},
            output_filter=["label", "label"]),
        "INVALID_ARGUMENT", "duplicate output tensor alias: label"),
    "bytes that are not a tf.Example": (
        lambda: _predict_request(signature="classify", inputs=[b"\xff\x00garbage"]),
        "INVALID_ARGUMENT", "input 'inputs'[0] is not a serialized tf.Example"),
}


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


@pytest.mark.parametrize("case", sorted(BAD_PREDICTS))
def test_devserver_answers_bad_predict_requests_and_keeps_serving(stub, client, case):
    inputs, code, fragment = BAD_PREDICTS[case]
    error = _rpc_error(stub.Predict, _predict_request(**inputs))
    assert error.code().name == code and error.details().startswith(fragment), error.details()
    assert client.predict(["so happy"])[0].label == "joy"


def test_texts_that_are_not_utf8_reach_the_graph_as_in_tf_serving(stub):
    """TF Serving passes string bytes through; the export's tokenizer reads a bad byte as
    U+FFFD, as ``bytes.decode(errors="replace")`` does."""
    response = stub.Predict(_predict_request(text=[b"so happy \xff\xfe", b"\xc3\x28 sad"]),
                            timeout=10)
    assert [label.decode() for label in tf.make_ndarray(response.outputs["label"])] == \
        ["joy", "sadness"]


@pytest.mark.parametrize("case", [
    pytest.param(case, marks=pytest.mark.cpu_only) if case == "ids out of the vocabulary" else case
    for case in sorted(BAD_OTHER_PREDICTS)])
def test_devserver_answers_bad_model_specs_and_tensors(stub, client, case):
    build, code, fragment = BAD_OTHER_PREDICTS[case]
    error = _rpc_error(stub.Predict, build())
    assert error.code().name == code and error.details().startswith(fragment), error.details()
    assert client.predict(["so sad"])[0].label == "sadness"


def test_devserver_answers_bad_classify_requests(stub, client):
    cases = [
        # classifier.cc, GetClassificationSignatureDef / PreProcessClassification
        (_classify_request(["ok"], signature=""), "INVALID_ARGUMENT",
         "Expected one or two output Tensors, found 3"),
        (_classify_request(["ok"], signature="nope"), "INVALID_ARGUMENT",
         "No signature was found with the name: nope"),
        (_classify_request(["ok"], signature="tokenize"), "INVALID_ARGUMENT",
         "No classification inputs found in SignatureDef: "),
        # util.cc, InputToSerializedExampleTensor
        (_classify_request([]), "INVALID_ARGUMENT", "Input is empty"),
        (_classify_request(["ok"], feature="body"), "INVALID_ARGUMENT",
         "bytes feature 'text'"),
        (_classify_request(["x" * 100_000]), "INVALID_ARGUMENT", "100,000 characters"),
        (_classify_request(["ok"] * 9), "INVALID_ARGUMENT", "limit is 8"),
    ]
    for request, code, fragment in cases:
        error = _rpc_error(stub.Classify, request)
        assert error.code().name == code and fragment in error.details(), error.details()
    assert client.classify(["so glad"])[0].label == "joy"


def test_devserver_answers_bad_metadata_status_and_oversized_requests(server, stub, client):
    metadata = get_model_metadata_pb2.GetModelMetadataRequest
    status = get_model_status_pb2.GetModelStatusRequest
    with grpc.insecure_channel(server.address) as channel:
        model_service = model_service_pb2_grpc.ModelServiceStub(channel)
        cases = [  # get_model_metadata_impl.cc
            (stub.GetModelMetadata, metadata(metadata_field=["signature_def"]),
             "INVALID_ARGUMENT", "Missing ModelSpec"),
            (stub.GetModelMetadata, metadata(model_spec={"name": "emotion"}),
             "INVALID_ARGUMENT", "GetModelMetadataRequest must specify at least one "
                                 "metadata_field"),
            (stub.GetModelMetadata, metadata(model_spec={"name": "emotion"},
                                             metadata_field=["signature_def", "graph"]),
             "INVALID_ARGUMENT", "Metadata field graph is not supported"),
            (stub.GetModelMetadata, metadata(model_spec={"name": "nope"},
                                             metadata_field=["signature_def"]),
             "NOT_FOUND", "Servable not found for request: Latest(nope)"),
            # get_model_status_impl.cc
            (model_service.GetModelStatus, status(), "INVALID_ARGUMENT", "Missing ModelSpec"),
            (model_service.GetModelStatus, status(model_spec={"name": "nope"}), "NOT_FOUND",
             "Could not find any versions of model nope"),
            (model_service.GetModelStatus, status(model_spec={"name": "emotion",
                                                              "version": {"value": 7}}),
             "NOT_FOUND", "Could not find version 7 of model emotion"),
            # classification_service.cc
            (stub.Classify, classification_pb2.ClassificationRequest(), "INVALID_ARGUMENT",
             "Missing ModelSpec"),
        ]
        for call, request, code, message in cases:
            error = _rpc_error(call, request)
            assert error.code().name == code and error.details().startswith(message), \
                error.details()
    huge = _predict_request(text=["a" * (LIMITS["max_request_bytes"] + 1)])
    error = _rpc_error(stub.Predict, huge)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    regress = regression_pb2.RegressionRequest(model_spec={"name": "emotion"})
    assert _rpc_error(stub.Regress, regress).code() == grpc.StatusCode.UNIMPLEMENTED
    assert client.status()[0]["state"] == "AVAILABLE"
