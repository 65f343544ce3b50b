"""TensorProto to and from Python lists, without NumPy: what the client sends and reads back.

A request carries its texts as a ``DT_STRING`` tensor in ``string_val``, as TensorFlow's
``make_tensor_proto`` writes it (the same bytes). A response tensor carries its numbers either in
the typed field (``float_val``, ``int64_val``...: TF Serving's C++ writes those) or packed in
``tensor_content`` (little-endian, as TensorFlow's ``make_tensor_proto`` packs arrays: the
development server); :func:`to_list` reads both as ``tf.make_ndarray`` does, a short typed field
included (its last value repeats to fill the shape).

Example:
    >>> tensor = string_tensor(["so happy", "é"])
    >>> dtype_name(tensor.dtype), shape(tensor), to_list(tensor)
    ('DT_STRING', [2], [b'so happy', b'\\xc3\\xa9'])
"""

from __future__ import annotations

import math
import struct
from typing import Any, Sequence

from tfemotion_client.protos.tensorflow.core.framework import tensor_pb2, types_pb2

# dtype -> (typed field, struct format of one value in tensor_content)
_LAYOUT = {
    types_pb2.DT_FLOAT: ("float_val", "f"),
    types_pb2.DT_DOUBLE: ("double_val", "d"),
    types_pb2.DT_INT32: ("int_val", "i"),
    types_pb2.DT_INT16: ("int_val", "h"),
    types_pb2.DT_INT8: ("int_val", "b"),
    types_pb2.DT_UINT8: ("int_val", "B"),
    types_pb2.DT_UINT16: ("int_val", "H"),
    types_pb2.DT_INT64: ("int64_val", "q"),
    types_pb2.DT_UINT32: ("uint32_val", "I"),
    types_pb2.DT_UINT64: ("uint64_val", "Q"),
    types_pb2.DT_BOOL: ("bool_val", "?"),
    types_pb2.DT_HALF: ("half_val", "e"),
    types_pb2.DT_BFLOAT16: ("half_val", "H"),
    types_pb2.DT_STRING: ("string_val", None),
}


def string_tensor(texts: Sequence[str]) -> tensor_pb2.TensorProto:
    """A 1-D ``DT_STRING`` tensor of ``texts`` (UTF-8), as ``tf.make_tensor_proto`` writes it.

    Example:
        >>> string_tensor(["a", "b"]).tensor_shape.dim[0].size
        2
    """
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING)
    tensor.tensor_shape.dim.add(size=len(texts))
    tensor.string_val.extend(text.encode("utf-8") for text in texts)
    return tensor


def dtype_name(dtype: int) -> str:
    """``DT_FLOAT`` for 1; the number as text for a dtype this release does not name.

    Example:
        >>> dtype_name(types_pb2.DT_INT64), dtype_name(999)
        ('DT_INT64', '999')
    """
    try:
        return types_pb2.DataType.Name(dtype)
    except ValueError:
        return str(dtype)


def shape(tensor: tensor_pb2.TensorProto) -> list[int] | None:
    """The tensor's dimensions, or None for an unknown rank.

    Example:
        >>> shape(tensor_pb2.TensorProto())
        []
    """
    if tensor.tensor_shape.unknown_rank:
        return None
    return [dim.size for dim in tensor.tensor_shape.dim]


def to_list(tensor: tensor_pb2.TensorProto) -> Any:
    """The tensor's values as nested lists of its shape (a scalar: the value), as
    ``tf.make_ndarray(tensor).tolist()`` gives them; strings stay bytes.

    Raises:
        ValueError: a dtype this client does not read (complex, quantized, resource, variant),
            an unknown rank, or more values than the shape holds.

    Example:
        >>> tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, float_val=[0.5, 0.25],
        ...                                 tensor_shape={"dim": [{"size": 1}, {"size": 2}]})
        >>> to_list(tensor)
        [[0.5, 0.25]]
    """
    dims = shape(tensor)
    if tensor.dtype not in _LAYOUT or dims is None:
        raise ValueError("The client reads tensors of a known shape and of dtype "
                         f"{', '.join(sorted(dtype_name(d) for d in _LAYOUT))}. Received: "
                         f"dtype={dtype_name(tensor.dtype)}, shape={dims}")
    count = math.prod(dims)
    values = _values(tensor, count)
    if len(values) > count:
        raise ValueError(f"A {dtype_name(tensor.dtype)} tensor of shape {dims} holds "
                         f"{count} values. Received: {len(values)} values")
    if len(values) < count:  # as tf.make_ndarray: the last value repeats (none: zeros)
        fill = values[-1] if values else (b"" if tensor.dtype == types_pb2.DT_STRING
                                          else _zero(tensor.dtype))
        values = values + [fill] * (count - len(values))
    return _nest(values, dims)


def _values(tensor: tensor_pb2.TensorProto, count: int) -> list[Any]:
    field, code = _LAYOUT[tensor.dtype]
    if tensor.tensor_content and code is not None:
        size = struct.calcsize(code)
        if len(tensor.tensor_content) != count * size:
            raise ValueError(f"tensor_content of a {dtype_name(tensor.dtype)} tensor of "
                             f"{count} values holds {count * size} bytes. "
                             f"Received: {len(tensor.tensor_content)} bytes")
        values = list(struct.unpack(f"<{count}{code}", tensor.tensor_content))
    else:
        values = list(getattr(tensor, field))
        if tensor.dtype == types_pb2.DT_HALF:  # each half's bits, in an int32
            values = [struct.unpack("<e", struct.pack("<H", bits))[0] for bits in values]
    if tensor.dtype == types_pb2.DT_BFLOAT16:  # each value's bits: a float32's upper half
        values = [struct.unpack("<f", struct.pack("<I", bits << 16))[0] for bits in values]
    return values


def _zero(dtype: int) -> Any:
    if dtype == types_pb2.DT_BOOL:
        return False
    return 0.0 if _LAYOUT[dtype][1] in ("f", "d", "e") or dtype == types_pb2.DT_BFLOAT16 else 0


def _nest(values: list[Any], dims: list[int]) -> Any:
    if not dims:
        return values[0]
    if len(dims) == 1:
        return values
    step = math.prod(dims[1:])
    return [_nest(values[i * step:(i + 1) * step], dims[1:]) for i in range(dims[0])]
