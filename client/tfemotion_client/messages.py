"""What a tfemotion model's client sends: the keys of an export's signatures, server addresses,
the texts checked, and TF Serving's request messages (``tfemotion_client.protos``) built for them.

A Predict request carries the texts as one ``DT_STRING`` tensor, ``text``, on the raw-text
signature; a Classify request one ``tf.Example`` per text with its bytes in ``text``, on the
``classify`` signature: the bytes ``tensorflow-serving-api`` and TensorFlow build for the same
inputs.

Example:
    >>> request = predict_request(["so happy"], "emotion", label="stable")
    >>> request.model_spec.signature_name, request.inputs[TEXT].string_val[0]
    ('serving_default', b'so happy')
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

from tfemotion_client.protos.tensorflow_serving.apis import classification_pb2, predict_pb2
from tfemotion_client.tensors import string_tensor

# The keys and signature names of a tfemotion export (tfemotion.export.signatures defines them
# for the exporter; a test checks that the two agree).
PREDICT = "serving_default"
CLASSIFY = "classify"
TEXT = "text"
LABEL = "label"
LABELS = "labels"
PROBABILITIES = "probabilities"


# region Addresses and checks


def parse_server(server: str, default_port: int = 8500) -> tuple[str, int]:
    """Split ``HOST:PORT`` (or ``[IPv6]:PORT``, or ``HOST``) into host and port.

    Args:
        server: str. The server address.
        default_port: int. Port used when ``server`` has none.

    Returns:
        (host, port).

    Raises:
        ValueError: empty host or a port that is not in 1..65535.

    Example:
        >>> parse_server("[::1]:9000")
        ('::1', 9000)
        >>> parse_server("serving.local")
        ('serving.local', 8500)
    """
    text = str(server).strip()
    host, port = text, str(default_port)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else port
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"server must be HOST:PORT with a port in 1..65535. "
                         f"Received: server={server!r}")
    return host, int(port)


def address(host: str, port: int) -> str:
    """``HOST:PORT``, with an IPv6 host in brackets.

    Example:
        >>> address("::1", 8500), address("127.0.0.1", 8500)
        ('[::1]:8500', '127.0.0.1:8500')
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def target(server: str) -> str:
    """The gRPC target a client dials for ``server``: ``HOST:PORT`` checked and normalized, or a
    gRPC target such as ``dns:///name:8500`` as it is.

    Raises:
        ValueError: a bad ``HOST:PORT``.

    Example:
        >>> target("localhost"), target("dns:///serving:8500")
        ('localhost:8500', 'dns:///serving:8500')
    """
    if ":///" in server:
        return server
    return address(*parse_server(server))


def check_texts(texts: Any) -> list[str]:
    """The texts as a list: one string, or an iterable of strings, at least one.

    Raises:
        TypeError: not strings.
        ValueError: no texts.

    Example:
        >>> check_texts("so happy")
        ['so happy']
    """
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Iterable):
        raise TypeError(f"texts must be a string or a list of strings. Received: texts={texts!r}")
    texts = list(texts)
    if not texts:
        raise ValueError("texts must hold at least one text. Received: texts=[]")
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings. Received: a {type(text).__name__} "
                            f"in texts: {text!r}")
    return texts


# endregion
# region Requests


def model_spec(spec: Any, name: str, version: Optional[int] = None, label: Optional[str] = None,
               signature: Optional[str] = None) -> None:
    """Fill a request's ``ModelSpec``: name, then version or version label, then signature.

    Example:
        >>> request = predict_pb2.PredictRequest()
        >>> model_spec(request.model_spec, "emotion", label="stable")
        >>> request.model_spec.name, request.model_spec.version_label
        ('emotion', 'stable')
    """
    spec.name = name
    if version is not None:
        spec.version.value = version
    elif label is not None:
        spec.version_label = label
    if signature:
        spec.signature_name = signature


def predict_request(texts: Sequence[str], name: str, *,
                    version: Optional[int] = None, label: Optional[str] = None,
                    signature: str = PREDICT) -> predict_pb2.PredictRequest:
    """The Predict request for ``texts``: one ``DT_STRING`` input, ``text``.

    Example:
        >>> predict_request(["hi"], "emotion", version=2).model_spec.version.value
        2
    """
    request = predict_pb2.PredictRequest()
    model_spec(request.model_spec, name, version, label, signature)
    request.inputs[TEXT].CopyFrom(string_tensor(texts))
    return request


def classify_request(texts: Sequence[str], name: str, *,
                     version: Optional[int] = None, label: Optional[str] = None,
                     signature: str = CLASSIFY) -> classification_pb2.ClassificationRequest:
    """The Classify request for ``texts``: one ``tf.Example`` per text, its bytes in ``text``.

    Example:
        >>> request = classify_request(["hi"], "emotion")
        >>> request.input.example_list.examples[0].features.feature["text"]
        bytes_list {
          value: "hi"
        }
        <BLANKLINE>
    """
    request = classification_pb2.ClassificationRequest()
    model_spec(request.model_spec, name, version, label, signature)
    for text in texts:
        example = request.input.example_list.examples.add()
        example.features.feature[TEXT].bytes_list.value.append(text.encode("utf-8"))
    return request


# endregion
