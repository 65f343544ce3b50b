"""rapidjson's parsing and writing as TF Serving 2.20 uses them (util/json_tensor.cc): each
case names what in rapidjson's reader (``reader.h``, messages of ``error/en.h``) or
TF Serving's ``ParseJson``/``WriteDecimal`` it follows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tfemotion.serving.tf_json import (JsonParseError, PrettyWriter, RawNumber, decimal_text,
                                       parse, write_compact)

# (body, rapidjson's reason, byte offset): ParseJson writes "JSON Parse error: REASON at
# offset: N" (GetParseError_En, GetErrorOffset).
PARSE_ERRORS = [
    (b"   ", "The document is empty.", 3),
    (b"{not json", "Missing a name for object member.", 1),
    (b'{"instances" ["x"]}', "Missing a colon after a name of object member.", 13),
    (b'{"instances": ["x"] "a": 1}', "Missing a comma or '}' after an object member.", 20),
    (b'{"instances": [1 2]}', "Missing a comma or ']' after an array element.", 17),
    (b'{"instances": [1,]}', "Invalid value.", 17),  # no trailing commas
    (b'{"instances": [],}', "Missing a name for object member.", 17),
    (b'{"instances": [tru]}', "Invalid value.", 18),
    (b'{"instances": [nul]}', "Invalid value.", 18),
    (b'{"instances": [+1]}', "Invalid value.", 15),
    (b'{"instances": [-]}', "Invalid value.", 16),
    (b'{"instances": [.5]}', "Invalid value.", 15),
    (b'{"instances": [1.]}', "Miss fraction part in number.", 17),
    (b'{"instances": [1e]}', "Miss exponent in number.", 17),
    (b'{"instances": [1e+]}', "Miss exponent in number.", 18),
    (b'{"instances": [1e400]}', "Number too big to be stored in double.", 15),
    (b'{"instances": [Nan]}', "Invalid value.", 17),  # kParseNanAndInfFlag: NaN exactly
    (b'{"instances": [Infinit]}', "Invalid value.", 22),
    (b'{"instances": ["\\q"]}', "Invalid escape character in string.", 16),
    (b'{"instances": ["\\u12G4"]}', "Incorrect hex digit after \\u escape in string.", 16),
    (b'{"instances": ["\\ud800"]}', "The surrogate pair in string is invalid.", 16),
    (b'{"instances": ["\\ud800\\u0041"]}', "The surrogate pair in string is invalid.", 16),
    (b'{"instances": ["\\udc00"]}', "The surrogate pair in string is invalid.", 16),
    (b'{"instances": ["x\x01"]}', "Invalid encoding in string.", 17),  # raw control char
    (b'{"instances": ["x\x00"]}', "Missing a closing quotation mark in string.", 17),
    (b'{"instances": ["x', "Missing a closing quotation mark in string.", 17),
    (b'\xef\xbb\xbf{"a": }', "Invalid value.", 9),  # offsets count the byte order mark
]


@pytest.mark.parametrize("body, reason, offset", PARSE_ERRORS)
def test_parse_errors_carry_rapidjsons_reason_and_offset(body, reason, offset):
    with pytest.raises(JsonParseError) as error:
        parse(body)
    assert str(error.value) == f"JSON Parse error: {reason} at offset: {offset}"


def test_an_empty_body_is_parse_jsons_own_message():
    with pytest.raises(JsonParseError, match=r"^JSON Parse error: The document is empty$"):
        parse(b"")


@pytest.mark.parametrize("body, value", [
    # EncodedInputStream<UTF8<>, MemoryStream> skips a byte order mark
    (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),
    # kParseStopWhenDoneFlag: what follows the first value is not read
    (b'{"a": 1} {"b": 2} garbage', {"a": 1}),
    (b"5 6", 5),
    # FindMember finds the first of two equal names
    (b'{"a": 1, "a": 2}', {"a": 1}),
    # integers stay integers up to uint64; beyond, doubles
    (b"[18446744073709551615, 18446744073709551616, -9223372036854775808, -0]",
     [2**64 - 1, 1.8446744073709552e19, -(2**63), 0]),
    (b'["\\u00e9\\ud83d\\ude00\\/"]', ["\u00e9\U0001F600/"]),
    (b' \t\r\n[ true , false , null ] ', [True, False, None]),
])
def test_bodies_rapidjson_accepts(body, value):
    assert parse(body) == value


def test_nan_and_infinities_are_numbers():
    """kParseNanAndInfFlag: NaN, Inf, Infinity, with an optional minus sign."""
    values = parse(b"[NaN, -NaN, Inf, -Inf, Infinity, -Infinity]")
    assert math.isnan(values[0]) and math.isnan(values[1])
    assert values[2:] == [math.inf, -math.inf, math.inf, -math.inf]


def test_bytes_that_are_not_utf8_pass_through_strings_unchanged():
    """Without kParseValidateEncodingFlag the bytes are copied: TF hands them to the graph."""
    text = parse(b'["caf\xe9 \xff\xfe ok \xc3\xa9"]')[0]
    assert text.encode("utf-8", "surrogateescape") == b"caf\xe9 \xff\xfe ok \xc3\xa9"


def test_deep_nesting_parses_without_recursion():
    """kParseIterativeFlag: no recursion, so no depth limit (Python's json stops near 1,000)."""
    depth = 100_000
    value = parse(b"[" * depth + b"1" + b"]" * depth)
    for _ in range(depth):
        value = value[0]
    assert value == 1


def test_objects_keep_every_member_in_order_for_code_that_iterates_them():
    parsed = parse(b'{"b": 1, "a": 2, "b": 3}')
    assert parsed == {"b": 1, "a": 2} and parsed.members == [("b", 1), ("a", 2), ("b", 3)]


@pytest.mark.parametrize("value, dtype, text", [
    # json_tensor_test.cc, FromJsonSingleFloatTensorSixDigitPrecision
    (9000000, "float32", "9e+06"), (999999, "float32", "999999.0"), (0.5, "float32", "0.5"),
    (0.0003, "float32", "0.0003"), (0.00003, "float32", "3e-05"),
    (555557.5, "float32", "555557.5"),
    # FromJsonSingleFloatTensorNonFinite
    (math.nan, "float32", "NaN"), (math.inf, "float32", "Infinity"),
    (-math.inf, "float32", "-Infinity"), (3, "float32", "3.0"),
    # six digits that do not read back as the number: max_digits10 (9 float, 17 double)
    (1 / 3, "float32", "0.333333343"), (1 / 3, "float64", "0.33333333333333331"),
    (0.1, "float32", "0.1"), (0.1, "float64", "0.1"), (-0.0, "float32", "-0.0"),
])
def test_decimal_text_is_write_decimal(value, dtype, text):
    assert decimal_text(value, dtype) == text


def test_every_float32_probability_reads_back_as_itself():
    values = np.random.default_rng(0).random(2000).astype(np.float32)
    assert all(np.float32(float(decimal_text(v))) == v for v in values)


def test_pretty_writer_single_line_items_as_tf_servings_predictions():
    """json_tensor_test.cc, FromJsonSingleTensor: items on one line, the bracket on its own."""
    writer = PrettyWriter()
    writer.start_object()
    writer.key("predictions")
    writer.start_array()
    for item in ([[1, 2], [3, 4]], [[5, 6], [7, 8]]):
        writer.single_line_arrays = True
        writer.value(item)
        writer.single_line_arrays = False
    writer.end_array()
    writer.end_object()
    assert writer.text() == ('{\n    "predictions": [[[1, 2], [3, 4]], [[5, 6], [7, 8]]\n'
                             '    ]\n}')


def test_compact_writer_is_json_value_to_debug_string():
    assert write_compact({"a": [1, RawNumber("0.5"), "q\"\\\n\x01", None, True, {}]}) == \
        '{"a":[1,0.5,"q\\"\\\\\\n\\u0001",null,true,{}]}'


def test_compact_writer_does_not_recurse():
    depth = 50_000
    assert write_compact(parse(b"[" * depth + b"]" * depth)) == "[" * depth + "]" * depth


def test_request_numbers_in_messages_are_quoted_as_rapidjson_writes_doubles():
    """JsonValueToDebugString uses Writer::Double (shortest digits), not WriteDecimal."""
    assert write_compact(parse(b'[0.123456789, 1e20, 2.5e-8, 3.0]')) == \
        "[0.123456789,100000000000000000000.0,2.5e-8,3.0]"
