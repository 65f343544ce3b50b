"""REST bodies <-> tensors and examples, check for check and text for text as TF Serving 2.20's
``tensorflow_serving/util/json_tensor.cc``.

``predict_tensors`` is ``FillPredictRequestFromJson`` after the signature is found (row form
``instances``, columnar ``inputs``); ``fill_examples`` is ``FillClassifyRegressRequestFromJson``;
``predictions_body``, ``results_body`` and ``error_body`` are ``MakeJsonFromTensors``,
``MakeJsonFromClassificationResult`` and ``MakeJsonFromStatus``, written as rapidjson's
``PrettyWriter`` writes them (:mod:`tfemotion.serving.tf_json`). Errors are
``ServableError("INVALID_ARGUMENT", TF Serving's message)``.

Example:
    >>> tensors, row = predict_tensors({"instances": ["hi", {"b64": "aGk="}]}, {"text": "string"})
    >>> row, tensors["text"].tolist()
    (True, [b'hi', b'hi'])
    >>> predict_tensors({"instances": [1]}, {"text": "string"})
    Traceback (most recent call last):
    ...
    tfemotion.export.servable.ServableError: Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: 1 Type: Number is not of expected type: string
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from tfemotion.export.servable import ServableError
from tfemotion.serving.tf_json import PrettyWriter, decimal_text, members, write_compact

_NUMPY = {"float": np.float32, "double": np.float64, "int32": np.int32, "int16": np.int16,
          "int8": np.int8, "uint8": np.uint8, "int64": np.int64, "bool": np.bool_,
          "uint32": np.uint32, "uint64": np.uint64, "string": object}
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


def _invalid(*parts: Any) -> ServableError:
    return ServableError("INVALID_ARGUMENT", "".join(str(p) for p in parts))


def _status_text(error: ServableError) -> str:
    """``Status::ToString()``: the code's name, a colon, the message."""
    return f"{error.code}: {error.message}"


def _type_name(value: Any) -> str:
    """rapidjson's type of a parsed value, as ``JsonTypeString``."""
    if value is None:
        return "Null"
    if value is True or value is False:
        return "True" if value else "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_b64(value: Any) -> bool:
    """``IsValBase64Object``: an object with the one key ``b64``, a string."""
    return isinstance(value, dict) and len(members(value)) == 1 and \
        isinstance(value.get("b64"), str)


def _b64_decode(value: dict) -> bytes:
    """``absl::Base64Unescape`` (padding optional); ``Unable to base64 decode`` otherwise."""
    text = value["b64"].encode("utf-8", "surrogateescape").rstrip(b"=")
    try:
        return base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Unable to base64 decode") from None


# region requests


def predict_tensors(document: dict, inputs: dict[str, str]) -> tuple[dict[str, np.ndarray], bool]:
    """The input arrays of a predict body, and whether it was the row form.

    Args:
        document: the parsed body (signature already found).
        inputs: the signature's input names and TF dtype names (``"string"``, ``"int32"``...).

    Raises:
        ServableError: INVALID_ARGUMENT with TF Serving's message.
    """
    both = ("Not formatted correctly expecting only one of 'inputs' or 'instances' keys to "
            "exist ")
    if "instances" in document:
        instances = document["instances"]
        if "inputs" in document:
            raise _invalid("JSON Value: ", write_compact(document), " ", both)
        if not isinstance(instances, list):
            raise _invalid("JSON Value: ", write_compact(document),
                           " Expecting 'instances' to be an list/array")
        if not instances:
            raise _invalid("JSON Value: ", write_compact(document),
                           " No values in 'instances' array")
        return _from_instances(instances, inputs), True
    if "inputs" in document:
        return _from_inputs(document["inputs"], inputs), False
    raise _invalid("Missing 'inputs' or 'instances' key")


def _from_instances(instances: list, inputs: dict[str, str]) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInstancesList``."""
    first = instances[0]
    if not isinstance(first, dict) and len(inputs) > 1:
        raise _invalid("instances is a plain list, but expecting list of objects as multiple "
                       "input tensors required as per tensorinfo_map")
    objects = isinstance(first, dict) and not _is_b64(first)
    values: dict[str, list] = {}
    shapes: dict[str, list] = {}
    for count, item in enumerate(instances):
        if objects:
            if not isinstance(item, dict) or _is_b64(item):
                raise _invalid(f"Expecting object but got list at item {count} of input list")
            keys = set()
            for name, value in members(item):
                keys.add(name)
                try:
                    _add_instance(value, name, inputs, values, shapes)
                except ServableError as error:
                    raise _invalid(f"Failed to process element: {count} key: {name} of "
                                   f"'instances' list. Error: {_status_text(error)}") from None
            if keys != set(inputs):
                raise _invalid(f"Failed to process element: {count} of 'instances' list. JSON "
                               f"object: {write_compact(item)} keys must be equal to: "
                               + ",".join(sorted(inputs)))
        else:
            if isinstance(item, dict) and not _is_b64(item):
                raise _invalid(f"Expecting value/list but got object at item {count} of input "
                               "list")
            name = next(iter(inputs))
            try:
                _add_instance(item, name, inputs, values, shapes)
            except ServableError as error:
                raise _invalid(f"Failed to process element: {count} of 'instances' list. "
                               f"Error: {_status_text(error)}") from None
    return {name: _array(name, values[name], [len(instances), *shapes[name]], inputs[name])
            for name in values}


def _add_instance(item: Any, name: str, inputs: dict[str, str], values: dict,
                  shapes: dict) -> None:
    """``AddInstanceItem``: one instance's value of input ``name``."""
    if name not in inputs:
        raise _invalid(f"JSON object: does not have named input: {name}")
    shape = _shape(item)
    flat: list = []
    _fill(item, 0, shape, inputs[name], flat)
    if name not in shapes:
        shapes[name], values[name] = shape, flat
        return
    size = int(np.prod(shapes[name], dtype=np.int64))
    if size != len(flat):
        raise _invalid(f"Expecting tensor size: {size} but got: {len(flat)}")
    if shapes[name] != shape:
        raise _invalid(f"Expecting shape {_shape_text(shapes[name])} but got: "
                       f"{_shape_text(shape)}")
    values[name].extend(flat)


def _from_inputs(value: Any, inputs: dict[str, str]) -> dict[str, np.ndarray]:
    """``FillTensorMapFromInputsMap``: extra keys beside the signature's inputs are ignored."""
    if not isinstance(value, dict) or _is_b64(value):
        if len(inputs) > 1:
            raise _invalid("inputs is a plain value/list, but expecting an object as multiple "
                           "input tensors required as per tensorinfo_map")
        named = {next(iter(inputs)): value}
    else:
        named = {}
        for name in sorted(inputs):
            if name not in value:
                raise _invalid(f"Missing named input: {name} in 'inputs' object.")
            named[name] = value[name]
    arrays = {}
    for name, item in named.items():
        shape, flat = _shape(item), []
        _fill(item, 0, shape, inputs[name], flat)
        arrays[name] = _array(name, flat, shape, inputs[name])
    return arrays


def _shape(value: Any) -> list[int]:
    """``GetDenseTensorShape``: the sizes along the first element of each level."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _shape_text(shape: list[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _fill(value: Any, level: int, shape: list[int], dtype: str, out: list) -> None:
    """``FillTensorProto``: every value at the level of the shape's rank, lists of its sizes."""
    stack = [(value, level)]  # iterative: a deep list cannot exhaust Python's recursion
    while stack:
        value, level = stack.pop()
        rank = len(shape)
        if not isinstance(value, list):
            if level != rank:
                raise _invalid(f"JSON Value: {write_compact(value)} found at incorrect level: "
                               f"{level + 1} in the JSON DOM. Expected at level: {rank}")
            out.append(_leaf(value, dtype))
            continue
        if level >= rank:
            raise _invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
        if len(value) != shape[level]:
            raise _invalid(f"Encountered list at unexpected size: {len(value)} at level: "
                           f"{level} expected size: {shape[level]}")
        stack.extend((item, level + 1) for item in reversed(value))


def _leaf(value: Any, dtype: str) -> Any:
    """``AddValueToTensor`` (and a ``b64`` object for strings)."""
    if isinstance(value, dict):
        if dtype == "string":
            if not _is_b64(value):
                raise _invalid(f"JSON Value: {write_compact(value)} not formatted correctly for "
                               "base64 data")
            return _b64_decode(value)
        raise _type_error(value, dtype)
    is_int = isinstance(value, int) and not isinstance(value, bool)
    ok = {"float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "string": isinstance(value, str),
          "bool": isinstance(value, bool),
          "int64": is_int and _INT64[0] <= value <= _INT64[1],
          "uint32": is_int and 0 <= value < 2**32,
          "uint64": is_int and 0 <= value < 2**64}
    ok["double"] = ok["float"]
    for name in ("int32", "int16", "int8", "uint8"):
        ok[name] = is_int and _INT32[0] <= value <= _INT32[1]
    if dtype not in ok:
        raise ServableError("UNIMPLEMENTED", f"Conversion of JSON Value: {write_compact(value)} "
                            f"to type: {dtype}")
    if not ok[dtype]:
        raise _type_error(value, dtype)
    if dtype == "string":
        return value.encode("utf-8", "surrogateescape")
    if dtype in ("int16", "int8", "uint8"):  # int_val holds it; the cast wraps as C++'s does
        return np.array(value, np.int64).astype(_NUMPY[dtype])
    return value


def _type_error(value: Any, dtype: str) -> ServableError:
    return _invalid(f"JSON Value: {write_compact(value)} Type: {_type_name(value)} is not of "
                    f"expected type: {dtype}")


def _array(name: str, flat: list, shape: list[int], dtype: str) -> np.ndarray:
    """The values as an array of ``shape``; a shape no tensor can have (deeper than numpy's 64
    dimensions; TF allows 254) is ``tensor parsing error``, as TF Serving's ``FromProto``."""
    if len(shape) > 32:
        raise _invalid(f"tensor parsing error: {name}")
    if dtype == "string":
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    with np.errstate(over="ignore"):  # a double beyond float32 becomes inf, as in C++
        return np.array(flat, dtype=_NUMPY[dtype]).reshape(shape)


def fill_examples(request: Any, document: dict) -> None:
    """``FillClassifyRegressRequestFromJson``: the context (if any), then ``examples``."""
    target = request.input.example_list
    if "context" in document:
        target = request.input.example_list_with_context
        _fill_example(target.context, document["context"])
    examples = document.get("examples")
    if "examples" not in document:
        raise _invalid("JSON Value: ", write_compact(document), " When method is classify, "
                       "key 'examples' is expected and was not found")
    if not isinstance(examples, list):
        raise _invalid("JSON Value: ", write_compact(document), " Expecting 'examples' value "
                       "to be an list/array")
    if not examples:
        raise _invalid("JSON Value: ", write_compact(document), " 'examples' value is an "
                       "empty array")
    for example in examples:
        _fill_example(target.examples.add(), example)


def _fill_example(example: Any, value: Any) -> None:
    """``MakeExampleFromJsonObject``: of two equal feature names the last wins, as there."""
    if not isinstance(value, dict):
        raise _invalid(f"Example must be JSON object but got JSON {_type_name(value)}")
    for name, content in members(value):
        feature = example.features.feature[name]
        feature.Clear()
        for item in content if isinstance(content, list) else [content]:
            _add_to_feature(item, name, feature)


def _add_to_feature(value: Any, name: str, feature: Any) -> None:
    """``AddValueToFeature``: bools and integers -> int64, decimals -> float, strings and
    ``b64`` -> bytes; one kind per feature."""
    if value is None or isinstance(value, list) or (isinstance(value, dict)
                                                    and not _is_b64(value)):
        raise _invalid(f"Feature: {name} has element with unexpected JSON type: "
                       f"{_type_name(value)}")
    if isinstance(value, (bool, int)):
        kind = "int64_list"
        if not isinstance(value, bool) and value > _INT64[1]:
            _check_kind(feature, kind, name)
            raise _invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
    else:
        kind = "float_list" if isinstance(value, float) else "bytes_list"
    _check_kind(feature, kind, name)
    if kind == "bytes_list":
        value = _b64_decode(value) if isinstance(value, dict) else \
            value.encode("utf-8", "surrogateescape")
    getattr(feature, kind).value.append(int(value) if kind == "int64_list" else value)


def _check_kind(feature: Any, kind: str, name: str) -> None:
    have = feature.WhichOneof("kind")
    if have is not None and have != kind:
        raise _invalid(f"Unexpected element type in feature: {name} expecting type: "
                       f"{have.split('_')[0]}")


# endregion
# region answers


def predictions_body(outputs: dict[str, np.ndarray], row: bool) -> bytes:
    """``MakeRowFormatJsonFromTensors`` / ``MakeColumnarFormatJsonFromTensors``.

    Example:
        >>> print(predictions_body({"p": np.array([[0.1, 0.9]], np.float32)}, row=True).decode())
        {
            "predictions": [[0.1, 0.9]
            ]
        }
    """
    writer = PrettyWriter()
    writer.start_object()
    several = len(outputs) > 1
    if row:
        writer.key("predictions")
        writer.start_array()
        rows = len(next(iter(outputs.values())))
        for index in range(rows):
            if several:
                writer.start_object()
            writer.single_line_arrays = True
            for name, value in outputs.items():
                if several:
                    writer.key(name)
                writer.value(_json_values(name, value[index]))
            writer.single_line_arrays = False
            if several:
                writer.end_object()
        writer.end_array()
    else:
        writer.key("outputs")
        if several:
            writer.start_object()
        for name, value in outputs.items():
            if several:
                writer.key(name)
            writer.value(_json_values(name, value))
        if several:
            writer.end_object()
    writer.end_object()
    return writer.bytes()


def results_body(classifications: list[list[tuple[str, float]]]) -> bytes:
    """``MakeJsonFromClassificationResult``: per example, ``[label, score]`` pairs.

    Example:
        >>> print(results_body([[("joy", 0.75), ("sadness", 0.25)]]).decode())
        {
            "results": [[["joy", 0.75], ["sadness", 0.25]]
            ]
        }
    """
    writer = PrettyWriter()
    writer.start_object()
    writer.key("results")
    writer.start_array()
    for classes in classifications:
        writer.single_line_arrays = True
        writer.value([[label, decimal_text(score, "float32")] for label, score in classes])
        writer.single_line_arrays = False
    writer.end_array()
    writer.end_object()
    return writer.bytes()


def error_body(message: str) -> bytes:
    """``MakeJsonFromStatus``.

    Example:
        >>> error_body("No values in 'instances' array")
        b'{\\n    "error": "No values in \\'instances\\' array"\\n}'
    """
    writer = PrettyWriter()
    writer.start_object()
    writer.key("error")
    writer.value(message)
    writer.end_object()
    return writer.bytes()


def _json_values(name: str, value: Any) -> Any:
    """An output as nested lists of JSON scalars: floats as ``WriteDecimal``, strings as
    they are, or ``{"b64": ...}`` when the output's name ends in ``_bytes``."""
    value = np.asarray(value)
    if value.dtype == object or value.dtype.kind == "S":
        if name.endswith("_bytes"):
            convert = lambda b: {"b64": base64.b64encode(b).decode("ascii")}  # noqa: E731
        else:
            convert = lambda b: b.decode("utf-8", "surrogateescape")  # noqa: E731
    elif value.dtype.kind == "f":
        kind = "float64" if value.dtype == np.float64 else "float32"
        convert = lambda x: decimal_text(float(x), kind)  # noqa: E731
    elif value.dtype.kind == "b":
        convert = bool
    else:
        convert = int
    if value.ndim == 0:
        return convert(value.item())
    if value.size == 0:
        return value.tolist()
    flat = [convert(x) for x in value.reshape(-1).tolist()]
    for size in reversed(value.shape[1:]):
        flat = [flat[i:i + size] for i in range(0, len(flat), size)]
    return flat


# endregion
