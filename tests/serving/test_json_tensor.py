"""REST bodies to tensors and answers to JSON, case for case with TF Serving 2.20's
``util/json_tensor_test.cc`` (the TEST each case comes from is named) and ``json_tensor.cc``."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfemotion.export.servable import ServableError
from tfemotion.serving.json_tensor import (error_body, fill_examples, predict_tensors,
                                           predictions_body, results_body)
from tfemotion.serving.tf_json import parse


def tensors(body: str, **inputs):
    return predict_tensors(parse(body.encode()), inputs or {"default": "int32"})


def refused(body: str, **inputs) -> str:
    with pytest.raises(ServableError) as error:
        tensors(body, **inputs)
    assert error.value.code == "INVALID_ARGUMENT"
    return error.value.message


def test_single_unnamed_tensor():
    """SingleUnnamedTensor: each instance one row."""
    arrays, row = tensors('{"instances": [[1,2],[3,4],[5,6]]}')
    assert row and arrays["default"].dtype == np.int32
    assert arrays["default"].tolist() == [[1, 2], [3, 4], [5, 6]]


def test_mixed_input_for_float_and_double_tensors():
    """MixedInputForFloatTensor, MixedInputForDoubleTensor: integers and decimals mix."""
    arrays, _ = tensors('{"instances": [1, 2.0, 3, 5.003, 0.0]}', default="float")
    assert arrays["default"].dtype == np.float32
    np.testing.assert_allclose(arrays["default"], [1, 2, 3, 5.003, 0])
    arrays, _ = tensors('{"instances": [1.0, 2, 0.662]}', default="double")
    assert arrays["default"].dtype == np.float64 and arrays["default"][2] == 0.662


def test_float_tensor_beyond_float_range():
    """FloatTensorThatExceedsMaxReturnsInf, FloatTensorThatExceedsMinReturnsZero."""
    with np.errstate(over="ignore"):
        arrays, _ = tensors('{"instances": [1.7976931348623157e308, -1.7976931348623157e308,'
                            ' 2.2250738585072014e-308]}', default="float")
    assert arrays["default"].tolist() == [math.inf, -math.inf, 0.0]


def test_base64_scalars_lists_and_named():
    """SingleUnnamedTensorBase64Scalars/Lists, SingleNamedTensorBase64."""
    arrays, _ = tensors('{"instances": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ"}]}',
                        default="string")
    assert arrays["default"].tolist() == [b"hello", b"world"]  # padding optional (absl)
    arrays, _ = tensors('{"instances": [[{"b64": "aGk="}, "x"]]}', default="string")
    assert arrays["default"].tolist() == [[b"hi", b"x"]]
    arrays, _ = tensors('{"instances": [{"t": {"b64": "aGk="}, "n": 1}]}', t="string", n="int32")
    assert arrays["t"].tolist() == [b"hi"] and arrays["n"].tolist() == [1]


def test_multiple_named_tensors_row_and_columnar():
    """MultipleNamedTensor, MultipleNamedTensorColumnarFormat, SingleUnnamedTensorColumnarFormat:
    a columnar object's keys beside the signature's inputs are not read."""
    arrays, row = tensors('{"instances": [{"a": [1,2], "b": "x"}, {"a": [3,4], "b": "y"}]}',
                          a="int32", b="string")
    assert row and arrays["a"].tolist() == [[1, 2], [3, 4]] and arrays["b"].tolist() == [b"x", b"y"]
    arrays, row = tensors('{"inputs": {"a": [[1,2]], "b": ["x"], "extra": 5}}',
                          a="int32", b="string")
    assert not row and set(arrays) == {"a", "b"}
    arrays, row = tensors('{"inputs": [[1,2],[3,4]]}')
    assert not row and arrays["default"].shape == (2, 2)
    arrays, _ = tensors('{"inputs": 7}')
    assert arrays["default"].shape == () and arrays["default"] == 7


@pytest.mark.parametrize("body, inputs, message", [
    # SingleUnnamedTensorErrors
    ('{"instances": [[1,2],[3,4],[5,6,7]], "inputs": [[1,2]]}', {},
     'JSON Value: {"instances":[[1,2],[3,4],[5,6,7]],"inputs":[[1,2]]} Not formatted correctly '
     "expecting only one of 'inputs' or 'instances' keys to exist "),
    ('{"instances": [[1,2],[3,4],[5,6,7]]}', {},
     "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: Expecting "
     "tensor size: 2 but got: 3"),
    ('{"instances": [[1,2],[3,4],[[5,6]]]}', {},
     "Failed to process element: 2 of 'instances' list. Error: INVALID_ARGUMENT: Expecting "
     "shape [2] but got: [1,2]"),
    ('{"instances": [1, [1]]}', {},
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: Expecting "
     "shape [] but got: [1]"),
    ('{"instances": [[1,2],["a", "b"]]}', {},
     "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: JSON Value: "
     '"a" Type: String is not of expected type: int32'),
    # MultipleNamedTensorErrors
    ('{"instances": [{"a": 1, "b": "x"}, [1]]}', {"a": "int32", "b": "string"},
     "Expecting object but got list at item 1 of input list"),
    ('{"instances": [1, {"a": 1}]}', {"a": "int32"},
     "Expecting value/list but got object at item 1 of input list"),
    ('{"instances": [1]}', {"a": "int32", "b": "string"},
     "instances is a plain list, but expecting list of objects as multiple input tensors "
     "required as per tensorinfo_map"),
    ('{"instances": [{"a": 1}]}', {"a": "int32", "b": "string"},
     "Failed to process element: 0 of 'instances' list. JSON object: {\"a\":1} keys must be "
     "equal to: a,b"),
    ('{"instances": [{"a": 1, "c": 2}]}', {"a": "int32"},
     "Failed to process element: 0 key: c of 'instances' list. Error: INVALID_ARGUMENT: JSON "
     "object: does not have named input: c"),
    ('{"inputs": [1]}', {"a": "int32", "b": "string"},
     "inputs is a plain value/list, but expecting an object as multiple input tensors "
     "required as per tensorinfo_map"),
    ('{"inputs": {"a": [1]}}', {"a": "int32", "b": "string"},
     "Missing named input: b in 'inputs' object."),
    # FillTensorProto's level and size checks, AddValueToTensor's types
    ('{"inputs": [[1,2],[3]]}', {},
     "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
    ('{"inputs": [[1,2],[3,[4]]]}', {}, "Encountered list at unexpected level: 2 expected < 2"),
    ('{"inputs": [[1,2],3]}', {},
     "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
    ('{"inputs": [2147483648]}', {},
     "JSON Value: 2147483648 Type: Number is not of expected type: int32"),
    ('{"inputs": [1.0]}', {}, "JSON Value: 1.0 Type: Number is not of expected type: int32"),
    ('{"inputs": [true]}', {}, "JSON Value: true Type: True is not of expected type: int32"),
    ('{"inputs": [{"x": 1}]}', {},
     'JSON Value: {"x":1} Type: Object is not of expected type: int32'),
    ('{"inputs": [1]}', {"t": "string"},
     "JSON Value: 1 Type: Number is not of expected type: string"),
    ('{"inputs": [{"b64": 5}]}', {"t": "string"},
     'JSON Value: {"b64":5} not formatted correctly for base64 data'),
    ('{"inputs": [{"b64": "!!"}]}', {"t": "string"}, "Unable to base64 decode"),
    ('{"inputs": [1]}', {"t": "bool"}, "JSON Value: 1 Type: Number is not of expected type: bool"),
    ('{"instances": {"a": 1}}', {},
     'JSON Value: {"instances":{"a":1}} Expecting \'instances\' to be an list/array'),
    ('{"instances": []}', {}, 'JSON Value: {"instances":[]} No values in \'instances\' array'),
    ('{"signature_name": "x"}', {}, "Missing 'inputs' or 'instances' key"),
])
def test_bad_bodies_get_json_tensors_messages(body, inputs, message):
    assert refused(body, **inputs) == message


def test_non_utf8_strings_reach_the_tensor_as_sent():
    arrays, _ = predict_tensors(parse(b'{"instances": ["caf\xe9"]}'), {"text": "string"})
    assert arrays["text"].tolist() == [b"caf\xe9"]


def _classification_request():
    from tensorflow_serving.apis import classification_pb2

    return classification_pb2.ClassificationRequest()


@pytest.mark.parametrize("body, message", [
    # json_tensor_test.cc, ClassifyRequest errors
    ('{"context": 5, "examples": [{}]}', "Example must be JSON object but got JSON Number"),
    ('{"examples": 5}', 'JSON Value: {"examples":5} Expecting \'examples\' value to be an '
                        "list/array"),
    ('{"examples": []}', "JSON Value: {\"examples\":[]} 'examples' value is an empty array"),
    ('{"signature_name": "x"}', 'JSON Value: {"signature_name":"x"} When method is classify, '
                                "key 'examples' is expected and was not found"),
    ('{"examples": [[1]]}', "Example must be JSON object but got JSON Array"),
    ('{"examples": [{"names": [null]}]}', "Feature: names has element with unexpected JSON "
                                          "type: Null"),
    ('{"examples": [{"names": ["a", 1]}]}', "Unexpected element type in feature: names "
                                            "expecting type: bytes"),
    ('{"examples": [{"names": [1, "a"]}]}', "Unexpected element type in feature: names "
                                            "expecting type: int64"),
    ('{"examples": [{"names": {"x": 1}}]}', "Feature: names has element with unexpected JSON "
                                            "type: Object"),
    ('{"examples": [{"names": [[1]]}]}', "Feature: names has element with unexpected JSON "
                                         "type: Array"),
    ('{"examples": [{"names": 18446744073709551615}]}', "Feature: names has uint64_t element. "
                                                        "Only int64_t is supported."),
])
def test_bad_classify_bodies_get_json_tensors_messages(body, message):
    with pytest.raises(ServableError) as error:
        fill_examples(_classification_request(), parse(body.encode()))
    assert error.value.message == message


def test_examples_features_by_json_type():
    """ClassifyRequest cases: bools and integers int64, decimals float, strings and b64 bytes;
    of a repeated feature name the last wins (the feature map is assigned per member)."""
    request = _classification_request()
    fill_examples(request, parse(b'{"context": {"c": "ctx"}, "examples": [{"i": [1, true], '
                                 b'"f": 0.5, "s": ["x", {"b64": "aGk="}], "d": 1, "d": "two"}]}'))
    example = request.input.example_list_with_context.examples[0].features.feature
    assert list(example["i"].int64_list.value) == [1, 1]
    assert list(example["f"].float_list.value) == [0.5]
    assert list(example["s"].bytes_list.value) == [b"x", b"hi"]
    assert list(example["d"].bytes_list.value) == [b"two"] and not example["d"].int64_list.value
    context = request.input.example_list_with_context.context.features.feature
    assert list(context["c"].bytes_list.value) == [b"ctx"]


def test_answers_are_written_as_tf_serving_writes_them():
    """FromJsonSingleTensor, FromJsonSingleScalarTensor, FromJsonSingleBytesTensor,
    FromJsonMultipleNamedTensors, JsonFromClassificationResult, MakeJsonFromTensors.StatusError."""
    ints = np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], np.int32)
    assert predictions_body({"t": ints}, row=True) == (
        b'{\n    "predictions": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]\n    ]\n}')
    assert predictions_body({"t": np.array([1, 2], np.int32)}, row=False) == (
        b'{\n    "outputs": [\n        1,\n        2\n    ]\n}')
    named = predictions_body({"label": np.array([b"joy"], object),
                              "p": np.array([[0.1, 0.9]], np.float32),
                              "raw_bytes": np.array([b"hi"], object)}, row=True)
    assert named == (b'{\n    "predictions": [\n        {\n            "label": "joy",\n'
                     b'            "p": [0.1, 0.9],\n            "raw_bytes": {\n'
                     b'                "b64": "aGk="\n            }\n        }\n    ]\n}')
    assert results_body([[("car", 0.2), ("bike", 0.7)]]) == (
        b'{\n    "results": [[["car", 0.2], ["bike", 0.7]]\n    ]\n}')
    assert error_body('Bad key: "key"') == b'{\n    "error": "Bad key: \\"key\\""\n}'
    assert predictions_body({"t": np.array([b"caf\xe9"], object)}, row=True) == (
        b'{\n    "predictions": ["caf\xe9"\n    ]\n}')  # bytes as the graph gave them


def test_deep_bodies_get_400s_not_a_crash():
    """A rank no tensor can have fails as TF's Tensor::FromProto does ("tensor parsing
    error"); an error message quoting a deep body is written without recursion."""
    depth = 20_000
    assert refused('{"inputs": ' + "[" * depth + "1" + "]" * depth + "}") == \
        "tensor parsing error: default"
    message = refused('{"instances": 1, "x": ' + "[" * depth + "]" * depth + "}")
    assert message.endswith(" Expecting 'instances' to be an list/array")
