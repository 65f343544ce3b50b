"""Requests of TensorFlow Serving's APIs, checked and run on a loaded model version.

Everything between a decoded request (gRPC, or REST turned into the same protos) and its
response: the limits of :class:`~tfemotion.config.ServingConfig` (batch size, text length),
input tensors checked against the signature's TensorInfo and converted to arrays, the
``tf.Example`` inputs of classification signatures, and running a ``Predict`` or ``Classify``
request on a loaded version (:class:`tfemotion.serving.modelstore.LoadedVersion`). Each bad request
raises :class:`~tfemotion.export.servable.ServableError` with the gRPC status (by name) and the message
the server sends back.

Where TensorFlow Serving 2.20 has a message for a bad request, it is its message, word for
word, from the source named beside the check (detail of this server's own may follow it).

Example:
    >>> check_text(b"\\xff" * 11, "input 'text'[0]", ServingConfig(max_text_chars=10))
    Traceback (most recent call last):
    ...
    tfemotion.export.servable.ServableError: input 'text'[0] has 11 characters; the limit is 10 (max_text_chars)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tfemotion.config import ServingConfig
from tfemotion.export.servable import ServableError, serialized_examples
from tfemotion.serving.apis import apis
from tfemotion.export.signatures import CLASSES, CLASSIFY, EXAMPLES, PREDICT, SCORES, TEXT

_CLASSIFY_OUTPUTS = {CLASSES, SCORES}


# region request checks and tensor conversion
def _dtype_name(dtype: int) -> str:
    from tensorflow.core.framework import types_pb2

    return types_pb2.DataType.Name(dtype) if dtype in types_pb2.DataType.values() else str(dtype)


_VALUE_FIELDS = {"DT_STRING": "string_val", "DT_FLOAT": "float_val", "DT_DOUBLE": "double_val",
                 "DT_INT32": "int_val", "DT_INT16": "int_val", "DT_INT8": "int_val",
                 "DT_UINT8": "int_val", "DT_INT64": "int64_val", "DT_BOOL": "bool_val",
                 "DT_HALF": "half_val", "DT_BFLOAT16": "half_val"}


def check_text(raw: bytes, where: str, config: ServingConfig) -> None:
    """Refuse a text longer than ``config.max_text_chars`` (a cap TF Serving does not have).

    Bytes that are not UTF-8 pass, as TF Serving passes them to the graph, whose tokenizer
    reads each bad byte as U+FFFD (as ``bytes.decode(errors="replace")``); so they count.
    """
    text = raw.decode("utf-8", "replace")
    if len(text) > config.max_text_chars:
        raise ServableError("INVALID_ARGUMENT", f"{where} has {len(text):,} characters; the "
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
            raise ServableError("INVALID_ARGUMENT", f"{where} is not a serialized tf.Example") \
                from None
    feature = example.features.feature.get(TEXT)
    if feature is None or feature.WhichOneof("kind") != "bytes_list" \
            or len(feature.bytes_list.value) != 1:
        raise ServableError("INVALID_ARGUMENT", f"{where} needs exactly one value in a bytes "
                            f"feature '{TEXT}'")
    check_text(feature.bytes_list.value[0], f"{where} feature '{TEXT}'", config)
    return example


def _check_batch(batch: int, where: str, config: ServingConfig) -> None:
    if batch == 0:
        raise ServableError("INVALID_ARGUMENT", f"{where} is an empty batch; send at least one")
    if batch > config.max_batch_size:
        raise ServableError("INVALID_ARGUMENT", f"{where} holds a batch of {batch}; the limit is "
                            f"{config.max_batch_size} (max_batch_size): split it")


def _decode_input(key: str, proto: Any, info: Any, config: ServingConfig) -> np.ndarray:
    """Check one input tensor against its TensorInfo and the limits; return it as an array."""
    where = f"input '{key}'"
    if proto.dtype != info.dtype:
        raise ServableError("INVALID_ARGUMENT", f"{where} must be {_dtype_name(info.dtype)}; got "
                            f"{_dtype_name(proto.dtype)}")
    shape = [d.size for d in proto.tensor_shape.dim]
    if not info.tensor_shape.unknown_rank:
        want = [d.size for d in info.tensor_shape.dim]
        if len(shape) != len(want) or any(w not in (-1, s) for w, s in zip(want, shape)):
            raise ServableError("INVALID_ARGUMENT", f"{where} must have shape {want} (-1: any "
                                f"size); got {shape}")
    if not shape or any(s < 0 for s in shape):
        raise ServableError("INVALID_ARGUMENT", f"{where} must be a batch (rank >= 1, sizes >= "
                            f"0); got shape {shape}")
    _check_batch(shape[0], where, config)
    expected = math.prod(shape)
    name = _dtype_name(proto.dtype)
    if proto.tensor_content:
        itemsize = np.dtype(apis().tf.as_dtype(proto.dtype).as_numpy_dtype).itemsize
        count = len(proto.tensor_content) / itemsize
    else:
        count = len(getattr(proto, _VALUE_FIELDS.get(name, "string_val")))
    if count != expected:
        raise ServableError("INVALID_ARGUMENT", f"{where} has {count:g} values for shape {shape}"
                            f" ({expected} expected)")
    array = tensor_to_array(proto, shape)
    if name == "DT_STRING":
        for i, raw in enumerate(array.flat):
            if key == EXAMPLES:
                _example_text(raw, f"{where}[{i}]", config)
            else:
                check_text(raw, f"{where}[{i}]", config)
    return array


def tensor_to_array(proto: Any, shape: list[int]) -> np.ndarray:
    """A TensorProto as an array: strings read straight from ``string_val`` (a few times
    faster than ``tf.make_ndarray``, which matters per request); other dtypes through it."""
    if proto.dtype == _DT_STRING and not proto.tensor_content:
        values = list(proto.string_val)
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)
    return apis().tf.make_ndarray(proto)


def array_to_tensor(array: np.ndarray, proto: Any) -> None:
    """Fill ``proto`` with ``array``: numbers as ``tensor_content``, strings as ``string_val``.

    Example:
        >>> from tensorflow.core.framework import tensor_pb2
        >>> proto = tensor_pb2.TensorProto(); array_to_tensor(np.array([1.5], np.float32), proto)
        >>> proto.dtype, [d.size for d in proto.tensor_shape.dim], len(proto.tensor_content)
        (1, [1], 4)
    """
    array = np.asarray(array)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if array.dtype == object or array.dtype.kind in "SU":
        proto.dtype = _DT_STRING
        proto.string_val.extend(v if isinstance(v, bytes) else str(v).encode("utf-8")
                                for v in array.reshape(-1))
        return
    dtype = _NUMPY_DTYPES.get(array.dtype.name)
    if dtype is None:  # a dtype the fast path does not know: TensorFlow's converter
        proto.CopyFrom(apis().tf.make_tensor_proto(array))
        return
    proto.dtype = dtype
    proto.tensor_content = np.ascontiguousarray(array).tobytes()


_DT_STRING = 7  # tensorflow.DataType.DT_STRING
_NUMPY_DTYPES = {"float32": 1, "float64": 2, "int32": 3, "uint8": 4, "int16": 5, "int8": 6,
                 "int64": 9, "bool": 10, "float16": 19}


# endregion
# region running requests
def _spec_out(response_spec: Any, servable: Any, signature: str) -> None:
    response_spec.name = servable.name
    response_spec.version.value = servable.version
    response_spec.signature_name = signature


def run_predict(servable: Any, request: Any, config: ServingConfig) -> Any:
    """Answer a ``PredictRequest`` with the version's signature (default ``serving_default``).

    Args:
        servable: a loaded version (``name``, ``version``, ``signature(key)``, ``run(...)``).
        request: PredictRequest.
        config: ServingConfig. The limits.

    Returns:
        The PredictResponse.

    Raises:
        ServableError: a bad request, with its gRPC status.
    """
    api = apis()
    key = request.model_spec.signature_name or PREDICT
    signature = servable.signature(key)
    _check_input_names(set(signature.inputs), set(request.inputs))
    inputs = {k: _decode_input(k, request.inputs[k], signature.inputs[k], config)
              for k in sorted(request.inputs)}
    if len({a.shape[0] for a in inputs.values()}) > 1:
        raise ServableError("INVALID_ARGUMENT", f"inputs have different batch sizes: "
                            f"{ {k: a.shape[0] for k, a in inputs.items()} }")
    _check_output_filter(list(request.output_filter), sorted(signature.outputs))
    outputs = servable.run(key, inputs, list(request.output_filter) or None)
    response = api.predict.PredictResponse()
    _spec_out(response.model_spec, servable, key)
    for name in request.output_filter or sorted(outputs):
        array_to_tensor(outputs[name], response.outputs[name])
    return response


def _check_input_names(expected: set, given: set) -> None:
    """predict_util.cc's VerifyRequestInputsSize, then the alias check of PreProcessPrediction.

    Example:
        >>> _check_input_names({"a", "b"}, {"a", "c"})
        Traceback (most recent call last):
        ...
        tfemotion.export.servable.ServableError: input tensor alias not found in signature: c. Inputs expected to be in the set {a,b}.
    """
    if len(given) != len(expected):
        raise ServableError("INVALID_ARGUMENT", (
            f"input size does not match signature: {len(given)}!={len(expected)} "
            f"len({{{','.join(sorted(given))}}}) != len({{{','.join(sorted(expected))}}}). "
            f"Sent extra: {{{','.join(sorted(given - expected))}}}. "
            f"Missing but required: {{{','.join(sorted(expected - given))}}}."))
    for alias in sorted(given - expected):
        raise ServableError("INVALID_ARGUMENT", f"input tensor alias not found in signature: "
                            f"{alias}. Inputs expected to be in the set "
                            f"{{{','.join(sorted(expected))}}}.")


def _check_output_filter(wanted: list, outputs: list) -> None:
    """predict_util.cc's PreProcessPrediction: each alias known, none twice."""
    seen = set()
    for alias in wanted:
        if alias not in outputs:
            raise ServableError("INVALID_ARGUMENT", f"output tensor alias not found in "
                                f"signature: {alias} Outputs expected to be in the set "
                                f"{{{','.join(outputs)}}}.")
        if alias in seen:
            raise ServableError("INVALID_ARGUMENT", f"duplicate output tensor alias: {alias}")
        seen.add(alias)


def _classification_signature(servable: Any, key: str) -> Any:
    """classifier.cc's GetClassificationSignatureDef and PreProcessClassification (without
    ``--enable_signature_method_name_check``, TF Serving's default), then the input's dtype.

    Example:
        >>> from types import SimpleNamespace
        >>> servable = SimpleNamespace(signature_defs={})
        >>> _classification_signature(servable, "serving_default")
        Traceback (most recent call last):
        ...
        tfemotion.export.servable.ServableError: No signature was found with the name: serving_default
    """
    signature = servable.signature_defs.get(key)
    hint = f" (this export classifies with signature_name='{CLASSIFY}')"
    if signature is None or key.startswith("__"):
        raise ServableError("INVALID_ARGUMENT", f"No signature was found with the name: {key}")
    if len(signature.inputs) != 1:
        raise ServableError("INVALID_ARGUMENT", "Expected one input Tensor." + hint)
    if len(signature.outputs) not in (1, 2):
        raise ServableError("INVALID_ARGUMENT", f"Expected one or two output Tensors, found "
                                                f"{len(signature.outputs)}{hint}")
    if EXAMPLES not in signature.inputs:
        raise ServableError("INVALID_ARGUMENT", f"No classification inputs found in "
                                                f"SignatureDef: {signature}")
    if not set(signature.outputs) & _CLASSIFY_OUTPUTS:
        raise ServableError("INVALID_ARGUMENT", 'Expected classification signature outputs to '
                            f'contain at least one of "{CLASSES}" or "{SCORES}". Signature was: '
                            f"{signature}")
    if _dtype_name(signature.inputs[EXAMPLES].dtype) != "DT_STRING":
        raise ServableError("INVALID_ARGUMENT", f"input '{EXAMPLES}' of signature '{key}' must "
                            "be DT_STRING (serialized tf.Examples)")
    return signature


def run_classify(servable: Any, request: Any, config: ServingConfig) -> Any:
    """Answer a ``ClassificationRequest``: the signature's one string input gets the serialized
    ``tf.Example`` list (context merged into each); ``classes``/``scores`` become the result."""
    api = apis()
    key = request.model_spec.signature_name or PREDICT
    signature = _classification_signature(servable, key)
    inputs = dict(signature.inputs)
    serialized = serialized_examples(request.input)
    _check_batch(len(serialized), "input.example_list", config)
    for i, example in enumerate(serialized):
        _example_text(example, f"example {i}", config)
    result = servable.run(key, {next(iter(inputs)): serialized})
    scores, classes = result.get(SCORES), result.get(CLASSES)
    response = api.classification.ClassificationResponse()
    _spec_out(response.model_spec, servable, key)
    width = (scores if scores is not None else classes).shape[-1]
    for i in range(len(serialized)):
        row = response.result.classifications.add()
        for j in range(width):
            item = row.classes.add()
            if classes is not None:
                item.label = classes[i, j].decode("utf-8")
            if scores is not None:
                item.score = float(scores[i, j])
    return response
# endregion
