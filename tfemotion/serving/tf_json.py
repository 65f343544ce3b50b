"""JSON as TensorFlow Serving reads and writes it: rapidjson's parser and writers.

TF Serving's REST layer (``util/json_tensor.cc``) parses bodies with rapidjson's
``kParseIterativeFlag | kParseNanAndInfFlag | kParseStopWhenDoneFlag`` over a UTF-8 stream that
skips a byte order mark and does not validate the encoding, and answers with rapidjson's
``PrettyWriter`` (4-space indents, probabilities written by ``WriteDecimal``). Python's ``json``
differs in every one of those: it refuses a BOM, trailing data, ``Inf`` and bytes that are not
UTF-8, keeps the last of two equal keys (rapidjson's ``FindMember`` finds the first), recurses
(so a deep body raises ``RecursionError``), accepts lone surrogates and numbers beyond a double,
writes float32 0.1 as 0.10000000149011612, and words its errors differently. This module does
what rapidjson does, error texts and byte offsets included.

Strings are returned as ``str``; bytes that are not UTF-8 come back as surrogate escapes, so
``text.encode("utf-8", "surrogateescape")`` gives the bytes TF Serving hands the graph.

Example:
    >>> parse(b'\\xef\\xbb\\xbf{"a": [1, 2.5, NaN], "a": 0} trailing')
    {'a': [1, 2.5, nan]}
    >>> parse(b'{"a": [1 2]}')
    Traceback (most recent call last):
    ...
    tfemotion.serving.tf_json.JsonParseError: JSON Parse error: Missing a comma or ']' after an array element. at offset: 9
    >>> decimal_text(0.1, "float32"), decimal_text(3.0, "float32"), decimal_text(9e6, "float64")
    ('0.1', '3.0', '9e+06')
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

_WHITESPACE = re.compile(rb"[ \t\n\r]*")
_PLAIN = re.compile(rb'[^"\\\x00-\x1f]*')
_INTEGER = re.compile(rb"-?(0|[1-9][0-9]*)")
_DIGITS = re.compile(rb"[0-9]+")
_ESCAPES = {ord('"'): '"', ord("\\"): "\\", ord("/"): "/", ord("b"): "\b", ord("f"): "\f",
            ord("n"): "\n", ord("r"): "\r", ord("t"): "\t"}
_HEX = re.compile(rb"[0-9A-Fa-f]{4}")
_BOM = b"\xef\xbb\xbf"
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


class JsonParseError(ValueError):
    """A body rapidjson cannot parse; the message is TF Serving's ``JSON Parse error: ...``."""


class JsonObject(dict):
    """A parsed object: the first value of each name (rapidjson's ``FindMember``), and
    ``members``, every (name, value) pair in order, for code that iterates them all."""

    def __init__(self) -> None:
        super().__init__()
        self.members: list[tuple[str, Any]] = []


class RawNumber(str):
    """Number text to write as it is (``WriteDecimal``'s output), not as a string."""


def parse(body: bytes) -> Any:
    """The first JSON value of ``body``, as TF Serving's ``ParseJson`` reads it.

    Raises:
        JsonParseError: with rapidjson's reason and byte offset.

    Example:
        >>> parse(b"")
        Traceback (most recent call last):
        ...
        tfemotion.serving.tf_json.JsonParseError: JSON Parse error: The document is empty
        >>> parse(b'{"t": "caf\\xe9"}')["t"].encode("utf-8", "surrogateescape")
        b'caf\\xe9'
    """
    if not body:
        raise JsonParseError("JSON Parse error: The document is empty")
    return _Parser(body).document()


class _Parser:
    """rapidjson's ``GenericReader`` in iterative mode, building Python values."""

    def __init__(self, data: bytes):
        self.data = data
        self.at = len(_BOM) if data.startswith(_BOM) else 0

    def fail(self, reason: str, offset: int) -> None:
        raise JsonParseError(f"JSON Parse error: {reason} at offset: {offset}")

    def skip(self) -> int:
        self.at = _WHITESPACE.match(self.data, self.at).end()
        return self.data[self.at] if self.at < len(self.data) else -1

    def document(self) -> Any:
        if self.skip() == -1:
            self.fail("The document is empty.", self.at)
        return self.value()

    def value(self) -> Any:
        """One value; containers are filled with an explicit stack (no recursion)."""
        stack: list[tuple[Any, Any]] = []  # (container, pending object key)
        while True:
            char = self.skip()
            if char == ord("{"):
                self.at += 1
                if self.skip() == ord("}"):
                    self.at += 1
                    item: Any = JsonObject()
                else:
                    stack.append((JsonObject(), self.member_name()))
                    continue
            elif char == ord("["):
                self.at += 1
                if self.skip() == ord("]"):
                    self.at += 1
                    item = []
                else:
                    stack.append(([], None))
                    continue
            else:
                item = self.scalar(char)
            while True:  # place the finished item, closing the containers it completes
                if not stack:
                    return item
                container, key = stack[-1]
                if isinstance(container, dict):
                    container.members.append((key, item))
                    container.setdefault(key, item)  # the first of two equal names wins
                    char = self.skip()
                    if char == ord(","):
                        self.at += 1
                        self.skip()
                        stack[-1] = (container, self.member_name())
                        break
                    if char != ord("}"):
                        self.fail("Missing a comma or '}' after an object member.", self.at)
                else:
                    container.append(item)
                    char = self.skip()
                    if char == ord(","):
                        self.at += 1
                        break
                    if char != ord("]"):
                        self.fail("Missing a comma or ']' after an array element.", self.at)
                self.at += 1
                item = stack.pop()[0]

    def member_name(self) -> str:
        if self.skip() != ord('"'):
            self.fail("Missing a name for object member.", self.at)
        name = self.string()
        if self.skip() != ord(":"):
            self.fail("Missing a colon after a name of object member.", self.at)
        self.at += 1
        return name

    def scalar(self, char: int) -> Any:
        if char == ord('"'):
            return self.string()
        for word, value in ((b"null", None), (b"true", True), (b"false", False)):
            if char == word[0]:
                for index, expected in enumerate(word):
                    if self.data[self.at + index:self.at + index + 1] != bytes([expected]):
                        self.fail("Invalid value.", self.at + index)
                self.at += len(word)
                return value
        return self.number()

    def number(self) -> Any:
        start, data = self.at, self.data
        minus = data[start:start + 1] == b"-"
        special = self.nan_or_infinity(start + minus, minus)
        if special is not None:
            return special
        match = _INTEGER.match(data, start)
        if match is None:
            self.fail("Invalid value.", start + minus)
        self.at, floating = match.end(), False
        if data[self.at:self.at + 1] == b".":
            digits = _DIGITS.match(data, self.at + 1)
            if digits is None:
                self.fail("Miss fraction part in number.", self.at + 1)
            self.at, floating = digits.end(), True
        if data[self.at:self.at + 1] in (b"e", b"E"):
            exponent = self.at + 1 + (data[self.at + 1:self.at + 2] in (b"+", b"-"))
            digits = _DIGITS.match(data, exponent)
            if digits is None:
                self.fail("Miss exponent in number.", exponent)
            self.at, floating = digits.end(), True
        text = data[start:self.at]
        if not floating:
            integer = int(text)
            if _INT64_MIN <= integer <= _UINT64_MAX:
                return integer
        number = float(text)
        if math.isinf(number):
            self.fail("Number too big to be stored in double.", start)
        return number

    def nan_or_infinity(self, at: int, minus: bool) -> Any:
        """``NaN``, ``Inf`` and ``Infinity`` (optionally after ``-``), as kParseNanAndInfFlag."""
        data = self.data
        if data[at:at + 1] == b"N":
            if data[at:at + 3] != b"NaN":
                self.fail("Invalid value.", at + 1 + (data[at + 1:at + 2] == b"a"))
            self.at = at + 3
            return math.nan
        if data[at:at + 1] == b"I":
            if data[at:at + 3] != b"Inf":
                self.fail("Invalid value.", at + 1 + (data[at + 1:at + 2] == b"n"))
            self.at = at + 3
            if data[self.at:self.at + 1] == b"i":
                rest = data[self.at:self.at + 5]
                if rest != b"inity":
                    matched = next(i for i, c in enumerate(b"inity") if rest[i:i + 1] != bytes([c]))
                    self.fail("Invalid value.", self.at + matched)
                self.at += 5
            return -math.inf if minus else math.inf
        return None

    def string(self) -> str:
        data, parts = self.data, []
        self.at += 1  # the opening quote
        while True:
            plain = _PLAIN.match(data, self.at)
            parts.append(data[self.at:plain.end()].decode("utf-8", "surrogateescape"))
            self.at = plain.end()
            char = data[self.at] if self.at < len(data) else 0
            if char == ord('"'):
                self.at += 1
                return "".join(parts)
            if char == ord("\\"):
                parts.append(self.escape())
            elif char == 0:  # a NUL byte or the end of the body
                self.fail("Missing a closing quotation mark in string.", self.at)
            else:
                self.fail("Invalid encoding in string.", self.at)

    def escape(self) -> str:
        escape_at, data = self.at, self.data
        kind = data[self.at + 1] if self.at + 1 < len(data) else -1
        if kind in _ESCAPES:
            self.at += 2
            return _ESCAPES[kind]
        if kind != ord("u"):
            self.fail("Invalid escape character in string.", escape_at)
        code = self.hex4(escape_at)
        if 0xD800 <= code <= 0xDBFF:
            if data[self.at:self.at + 2] != b"\\u":
                self.fail("The surrogate pair in string is invalid.", escape_at)
            low = self.hex4(escape_at)
            if not 0xDC00 <= low <= 0xDFFF:
                self.fail("The surrogate pair in string is invalid.", escape_at)
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
        elif 0xDC00 <= code <= 0xDFFF:
            self.fail("The surrogate pair in string is invalid.", escape_at)
        return chr(code)

    def hex4(self, escape_at: int) -> int:
        """The 4 hex digits after ``\\u`` at ``self.at``."""
        digits = _HEX.match(self.data, self.at + 2)
        if digits is None:
            self.fail("Incorrect hex digit after \\u escape in string.", escape_at)
        self.at = digits.end()
        return int(digits.group(), 16)


# region writing


def decimal_text(value: float, dtype: str = "float32") -> RawNumber:
    """A float as ``WriteDecimal`` writes it: 6 significant digits when they read back as the
    same number, else all (9 for float32, 17 for float64); ``.0`` on whole numbers; ``NaN``,
    ``Infinity``, ``-Infinity``.

    Example:
        >>> [decimal_text(v) for v in (0.5, 1 / 3, 1e-5, -0.0, float("-inf"))]
        ['0.5', '0.333333343', '1e-05', '-0.0', '-Infinity']
    """
    if math.isnan(value):
        return RawNumber("NaN")
    if math.isinf(value):
        return RawNumber("-Infinity" if value < 0 else "Infinity")
    single = dtype == "float32"
    value = float(np.float32(value)) if single else float(value)
    text = "%.6g" % value
    back = float(np.float32(text)) if single else float(text)
    if back != value:
        text = "%.*g" % (9 if single else 17, value)
    if "." not in text and "e" not in text:
        text += ".0"
    return RawNumber(text)


class PrettyWriter:
    """rapidjson's ``PrettyWriter`` (4-space indents), driven call by call as TF Serving drives it.

    ``single_line_arrays`` is ``kFormatSingleLineArray``: a value that starts inside an array
    gets ``", "`` before it and no new line. TF Serving switches it on around each item of
    ``predictions`` and ``results``, which is why its answers read ``"predictions": [[0.1, 0.9],
    [...]`` with the closing bracket on a line of its own.

    Example:
        >>> writer = PrettyWriter()
        >>> writer.start_object(); writer.key("predictions"); writer.start_array()
        >>> writer.single_line_arrays = True
        >>> writer.value([RawNumber("0.5"), 1]); writer.value(["joy"])
        >>> writer.single_line_arrays = False
        >>> writer.end_array(); writer.end_object()
        >>> print(writer.text())
        {
            "predictions": [[0.5, 1], ["joy"]
            ]
        }
    """

    def __init__(self) -> None:
        self.out: list[str] = []
        self.levels: list[list] = []  # [in_array, values written]
        self.single_line_arrays = False

    def text(self) -> str:
        return "".join(self.out)

    def bytes(self) -> bytes:
        """The text as TF Serving sends it: strings' bytes as they came (surrogate escapes)."""
        return self.text().encode("utf-8", "surrogateescape")

    def _prefix(self) -> None:
        if not self.levels:
            return
        level = self.levels[-1]
        if level[0]:
            if level[1]:
                self.out.append(", " if self.single_line_arrays else ",")
            if not self.single_line_arrays:
                self.out.append("\n" + " " * (4 * len(self.levels)))
        else:
            if level[1]:
                self.out.append(",\n" if level[1] % 2 == 0 else ": ")
            else:
                self.out.append("\n")
            if level[1] % 2 == 0:
                self.out.append(" " * (4 * len(self.levels)))
        level[1] += 1

    def start_object(self) -> None:
        self._prefix()
        self.out.append("{")
        self.levels.append([False, 0])

    def end_object(self) -> None:
        empty = self.levels.pop()[1] == 0
        if not empty:
            self.out.append("\n" + " " * (4 * len(self.levels)))
        self.out.append("}")

    def start_array(self) -> None:
        self._prefix()
        self.out.append("[")
        self.levels.append([True, 0])

    def end_array(self) -> None:
        empty = self.levels.pop()[1] == 0
        if not empty and not self.single_line_arrays:
            self.out.append("\n" + " " * (4 * len(self.levels)))
        self.out.append("]")

    def key(self, name: str) -> None:
        self._prefix()
        self.out.append(_string(name))

    def value(self, value: Any) -> None:
        """A scalar, or a (nested) list of them, or a dict."""
        if isinstance(value, dict):
            self.start_object()
            for name, item in value.items():
                self.key(str(name))
                self.value(item)
            self.end_object()
        elif isinstance(value, (list, tuple)):
            self.start_array()
            for item in value:
                self.value(item)
            self.end_array()
        else:
            self._prefix()
            self.out.append(_scalar(value))


def write_compact(value: Any) -> str:
    """``value`` as rapidjson's ``Writer`` writes it (TF Serving's ``JsonValueToDebugString``),
    without recursion (a body may nest as deep as its size allows).

    Example:
        >>> write_compact({"instances": [1.5, "a\\nb"], "x": None})
        '{"instances":[1.5,"a\\\\nb"],"x":null}'
    """
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item)
        elif isinstance(item, dict):
            pairs = list(members(item))
            stack.append(_Text("}"))
            for index, (key, child) in reversed(list(enumerate(pairs))):
                stack.extend((child, _Text(("," if index else "") + _string(str(key)) + ":")))
            stack.append(_Text("{"))
        elif isinstance(item, (list, tuple)):
            stack.append(_Text("]"))
            for index, child in reversed(list(enumerate(item))):
                stack.extend((child, _Text("," if index else "")))
            stack.append(_Text("["))
        else:
            out.append(_scalar(item))
    return "".join(out)


class _Text(str):
    """Text the compact writer copies as it is."""


def members(value: dict) -> list:
    """Every (name, value) of an object in order, repeated names too."""
    return value.members if isinstance(value, JsonObject) else list(value.items())


def _scalar(value: Any) -> str:
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return double_text(float(value))


def double_text(value: float) -> str:
    """A double as rapidjson's ``Writer::Double`` writes it (how TF Serving's messages quote a
    request's numbers): the shortest digits that read back, laid out by rapidjson's
    ``Prettify`` (``.0`` on whole numbers up to 21 digits, no ``+`` in exponents).

    Example:
        >>> [double_text(v) for v in (1.5, 0.123456789, 1e20, 1e21, 1e-6, 1e-7, -0.0, 1234e30)]
        ['1.5', '0.123456789', '100000000000000000000.0', '1e21', '0.000001', '1e-7', '-0.0', '1.234e33']
    """
    if not math.isfinite(value):
        return decimal_text(value, "float64")
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0.0"
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    k = int(exponent or 0) - len(fraction)  # value = int(whole + fraction) * 10^k
    k += len(digits) - len(digits.rstrip("0"))
    digits = digits.rstrip("0")
    length, kk = len(digits), len(digits) + k
    if 0 <= k and kk <= 21:
        text = digits + "0" * k + ".0"
    elif 0 < kk <= 21:
        text = digits[:kk] + "." + digits[kk:]
    elif -6 < kk <= 0:
        text = "0." + "0" * -kk + digits
    elif length == 1:
        text = f"{digits}e{kk - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return sign + text


_CONTROL = {i: f"\\u{i:04X}" for i in range(0x20)}
_CONTROL.update({ord("\b"): "\\b", ord("\f"): "\\f", ord("\n"): "\\n", ord("\r"): "\\r",
                 ord("\t"): "\\t", ord('"'): '\\"', ord("\\"): "\\\\"})


def _string(text: str) -> str:
    """A string as rapidjson writes it: only quotes, backslashes and controls escaped."""
    return '"' + text.translate(_CONTROL) + '"'


# endregion
