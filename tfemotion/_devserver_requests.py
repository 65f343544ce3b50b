"""Request checks and execution for the development server (``tfemotion.devserver``).

Everything between a decoded gRPC request and its response: the limits of
:class:`~tfemotion.config.ServingConfig` (batch size, text length, UTF-8), input tensors checked
against the signature's TensorInfo and converted to arrays, ``tf.Example`` inputs of
classification signatures, and running a ``Predict`` or ``Classify`` request on a loaded
servable. Each bad request raises ``_RequestError`` with the gRPC status code (by name) and the
message the server sends back; TensorFlow errors are mapped to their gRPC codes. Private to
``tfemotion.devserver``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from tfemotion.config import ServingConfig
from tfemotion.serving import CLASSIFY_SIGNATURE, PREDICT_SIGNATURE, TEXT_FEATURE, _apis

if TYPE_CHECKING:
    from tfemotion.devserver import _Servable

_EXAMPLES_INPUT = "inputs"  # serialized tf.Example input of classification signatures
_CLASSIFY_OUTPUTS = {"classes", "scores"}


class _RequestError(Exception):
    """A request the server answers with a gRPC status code (by name) and a message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _code_name(number: int) -> str:
    grpc = _apis().grpc
    return next((c.name for c in grpc.StatusCode if c.value[0] == number), "UNKNOWN")


# region request checks and tensor conversion
def _dtype_name(dtype: int) -> str:
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() else str(dtype)


_VALUE_FIELDS = {"DT_STRING": "string_val", "DT_FLOAT": "float_val", "DT_DOUBLE": "double_val",
                 "DT_INT32": "int_val", "DT_INT16": "int_val", "DT_INT8": "int_val",
                 "DT_UINT8": "int_val", "DT_INT64": "int64_val", "DT_BOOL": "bool_val",
                 "DT_HALF": "half_val", "DT_BFLOAT16": "half_val"}


def _check_text(raw: bytes, where: str, config: ServingConfig) -> None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _RequestError("INVALID_ARGUMENT", f"{where} is not valid UTF-8 ({error.reason} at "
                            f"byte {error.start}); send texts encoded as UTF-8") from None
    if len(text) > config.max_text_chars:
        raise _RequestError("INVALID_ARGUMENT", f"{where} has {len(text):,} characters; the "
                            f"limit is {config.max_text_chars:,} (max_text_chars)")


def _example_text(serialized_or_example: Any, where: str, config: ServingConfig) -> Any:
    """Check the bytes feature ``text`` of one tf.Example; return the Example."""
    from tensorflow.core.example import example_pb2
    from google.protobuf.message import DecodeError

    example = serialized_or_example
    if isinstance(example, bytes):
        try:
            example = example_pb2.Example.FromString(example)
        except DecodeError:
            raise _RequestError("INVALID_ARGUMENT", f"{where} is not a serialized tf.Example") \
                from None
    feature = example.features.feature.get(TEXT_FEATURE)
    if feature is None or feature.WhichOneof("kind") != "bytes_list" \
            or len(feature.bytes_list.value) != 1:
        raise _RequestError("INVALID_ARGUMENT", f"{where} needs exactly one value in a bytes "
                            f"feature '{TEXT_FEATURE}'")
    _check_text(feature.bytes_list.value[0], f"{where} feature '{TEXT_FEATURE}'", config)
    return example


def _check_batch(batch: int, where: str, config: ServingConfig) -> None:
    if batch == 0:
        raise _RequestError("INVALID_ARGUMENT", f"{where} is an empty batch; send at least one")
    if batch > config.max_batch_size:
        raise _RequestError("INVALID_ARGUMENT", f"{where} holds a batch of {batch}; the limit is "
                            f"{config.max_batch_size} (max_batch_size): split it")


def _decode_input(key: str, proto: Any, info: Any, config: ServingConfig) -> np.ndarray:
    """Check one input tensor against its TensorInfo and the limits; return it as an array."""
    where = f"input '{key}'"
    if proto.dtype != info.dtype:
        raise _RequestError("INVALID_ARGUMENT", f"{where} must be {_dtype_name(info.dtype)}; got "
                            f"{_dtype_name(proto.dtype)}")
    shape = [d.size for d in proto.tensor_shape.dim]
    if not info.tensor_shape.unknown_rank:
        want = [d.size for d in info.tensor_shape.dim]
        if len(shape) != len(want) or any(w not in (-1, s) for w, s in zip(want, shape)):
            raise _RequestError("INVALID_ARGUMENT", f"{where} must have shape {want} (-1: any "
                                f"size); got {shape}")
    if not shape or any(s < 0 for s in shape):
        raise _RequestError("INVALID_ARGUMENT", f"{where} must be a batch (rank >= 1, sizes >= "
                            f"0); got shape {shape}")
    _check_batch(shape[0], where, config)
    expected = math.prod(shape)
    name = _dtype_name(proto.dtype)
    if proto.tensor_content:
        itemsize = np.dtype(_apis().tf.as_dtype(proto.dtype).as_numpy_dtype).itemsize
        count = len(proto.tensor_content) / itemsize
    else:
        count = len(getattr(proto, _VALUE_FIELDS.get(name, "string_val")))
    if count != expected:
        raise _RequestError("INVALID_ARGUMENT", f"{where} has {count:g} values for shape {shape}"
                            f" ({expected} expected)")
    array = _apis().tf.make_ndarray(proto)
    if name == "DT_STRING":
        for i, raw in enumerate(array.flat):
            if key == _EXAMPLES_INPUT:
                _example_text(raw, f"{where}[{i}]", config)
            else:
                _check_text(raw, f"{where}[{i}]", config)
    return array


# endregion
# region running requests
def _spec_out(response_spec: Any, servable: _Servable, signature: str) -> None:
    response_spec.name = servable.name
    response_spec.version.value = servable.version
    response_spec.signature_name = signature


def _run_predict(servable: _Servable, request: Any, config: ServingConfig) -> Any:
    api = _apis()
    key = request.model_spec.signature_name or PREDICT_SIGNATURE
    signature = servable.signature(key)
    expected, given = set(signature.inputs), set(request.inputs)
    if expected != given:
        problem = (f"missing input(s) {sorted(expected - given)}" if expected - given
                   else f"unknown input(s) {sorted(given - expected)}")
        raise _RequestError("INVALID_ARGUMENT", f"{problem}; signature '{key}' takes "
                            f"{sorted(expected)}")
    inputs = {k: _decode_input(k, request.inputs[k], signature.inputs[k], config)
              for k in sorted(given)}
    if len({a.shape[0] for a in inputs.values()}) > 1:
        raise _RequestError("INVALID_ARGUMENT", f"inputs have different batch sizes: "
                            f"{ {k: a.shape[0] for k, a in inputs.items()} }")
    unknown = set(request.output_filter) - set(signature.outputs)
    if unknown:
        raise _RequestError("INVALID_ARGUMENT", f"output_filter names unknown output(s) "
                            f"{sorted(unknown)}; signature '{key}' has {sorted(signature.outputs)}")
    outputs = servable.run(key, inputs)
    response = api.predict.PredictResponse()
    _spec_out(response.model_spec, servable, key)
    for name in request.output_filter or sorted(outputs):
        response.outputs[name].CopyFrom(api.tf.make_tensor_proto(outputs[name]))
    return response


def _run_classify(servable: _Servable, request: Any, config: ServingConfig) -> Any:
    api = _apis()
    key = request.model_spec.signature_name or PREDICT_SIGNATURE
    signature = servable.signature(key)
    inputs = dict(signature.inputs)
    outputs = set(signature.outputs)
    if len(inputs) != 1 or _dtype_name(next(iter(inputs.values())).dtype) != "DT_STRING" \
            or not outputs & _CLASSIFY_OUTPUTS or outputs - _CLASSIFY_OUTPUTS:
        raise _RequestError("FAILED_PRECONDITION", f"Classify needs a signature with one DT_STRING"
                            f" input of serialized tf.Examples and outputs 'classes' and/or "
                            f"'scores'; '{key}' takes {sorted(inputs)} and returns "
                            f"{sorted(outputs)}. Set model_spec.signature_name="
                            f"'{CLASSIFY_SIGNATURE}'")
    kind = request.input.WhichOneof("kind")
    if kind == "example_list":
        examples = list(request.input.example_list.examples)
    elif kind == "example_list_with_context":
        context = request.input.example_list_with_context.context
        examples = []
        for example in request.input.example_list_with_context.examples:
            merged = type(context)()
            merged.CopyFrom(context)
            merged.MergeFrom(example)
            examples.append(merged)
    else:
        raise _RequestError("INVALID_ARGUMENT", "Input is empty: set input.example_list")
    _check_batch(len(examples), "input.example_list", config)
    for i, example in enumerate(examples):
        _example_text(example, f"example {i}", config)
    serialized = np.array([e.SerializeToString() for e in examples], dtype=object)
    result = servable.run(key, {next(iter(inputs)): serialized})
    scores, classes = result.get("scores"), result.get("classes")
    response = api.classification.ClassificationResponse()
    _spec_out(response.model_spec, servable, key)
    width = (scores if scores is not None else classes).shape[-1]
    for i in range(len(examples)):
        row = response.result.classifications.add()
        for j in range(width):
            item = row.classes.add()
            if classes is not None:
                item.label = classes[i, j].decode("utf-8")
            if scores is not None:
                item.score = float(scores[i, j])
    return response
# endregion
