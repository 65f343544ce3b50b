"""TensorFlow Serving's REST API for the development server (default port 8501).

The same paths, bodies and error bodies as ``tensorflow_model_server --rest_api_port``
(``http_rest_api_handler.cc``, ``json_tensor.cc``), turned into the protos of the gRPC API and
answered by the same request code (:mod:`tfemotion.serving.handlers`):

- ``GET /v1/models/NAME[/versions/N | /labels/L]``: model status;
- ``GET /v1/models/NAME[/versions/N | /labels/L]/metadata``: the signatures;
- ``POST /v1/models/NAME[/versions/N | /labels/L]:predict``: ``{"signature_name", "instances"}``
  (row form, answered with ``{"predictions"}``) or ``{"inputs"}`` (columnar, ``{"outputs"}``);
  string values may be ``{"b64": "..."}``;
- ``POST ...:classify``: ``{"signature_name", "context", "examples"}`` -> ``{"results"}``, one
  list of ``[label, score]`` per example.

Bodies are read as TF Serving 2.20 reads them (rapidjson: a byte order mark skipped, data after
the document ignored, bytes that are not UTF-8 passed on, the first of two equal keys, ``NaN``
and ``Infinity``; :mod:`tfemotion.serving.tf_json`), gzip bodies uncompressed, and turned into
tensors with its checks and messages (:mod:`tfemotion.serving.json_tensor`); answers are laid
out and rounded as its ``PrettyWriter`` and ``WriteDecimal`` write them. Errors answer
``{"error": "message"}`` with the HTTP status TensorFlow Serving maps the gRPC status to
(INVALID_ARGUMENT and FAILED_PRECONDITION 400, NOT_FOUND 404, UNAVAILABLE 503...).
``tests/serving/test_rest.py`` holds the cases, each with the TF Serving source it follows.

Unlike TensorFlow Serving, a body larger than ``ServingConfig.max_request_bytes`` (before or
after gzip) is refused (413), and so is a batch or a text past the caps of ``ServingConfig``
(400): TF Serving has no such limits, and without them one request could exhaust the memory.

Example:
    >>> route("POST", "/v1/models/emotion/labels/stable:predict")
    ('emotion', None, 'stable', 'predict', None)
    >>> route("GET", "/v1/models/emotion/versions/2/metadata")
    ('emotion', 2, None, None, 'metadata')
"""

from __future__ import annotations

import json
import logging
import re
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import unquote


from tfemotion.config import ServingConfig
from tfemotion.export.servable import ServableError
from tfemotion.export.signatures import PREDICT
from tfemotion.serving.apis import apis
from tfemotion.serving.handlers import run_classify, run_predict
from tfemotion.serving.json_tensor import (error_body, fill_examples, predict_tensors,
                                           predictions_body, results_body)
from tfemotion.serving.tf_json import JsonParseError, parse, write_compact

logger = logging.getLogger(__name__)

# TensorFlow Serving's path patterns (http_rest_api_util.cc), case-insensitive.
_PREDICT_PATH = re.compile(r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                           r":(classify|regress|predict)", re.I)
_STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                          r"(?:/(metadata))?", re.I)
# The paths TF Serving's REST dispatcher takes (http_rest_api_util.h); others get libevent's
# evhttp_send_error(404) page.
_API_PATH = re.compile(r"/v1/.*", re.I | re.S)
NOT_FOUND_PAGE = (b"<HTML><HEAD>\n<TITLE>404 Not Found</TITLE>\n</HEAD><BODY>\n<H1>Not Found</H1>"
                  b"\n</BODY></HTML>\n")
# gRPC status -> HTTP status, as http_server.cc's ToHTTPStatusCode.
HTTP_STATUS = {"OK": 200, "CANCELLED": 499, "UNKNOWN": 500, "INVALID_ARGUMENT": 400,
               "DEADLINE_EXCEEDED": 504, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
               "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429, "FAILED_PRECONDITION": 400,
               "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501, "INTERNAL": 500,
               "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401}


def route(method: str, path: str) -> Optional[tuple]:
    """``(model, version, label, api, subresource)`` of a request path, or None.

    Example:
        >>> route("GET", "/v2/models/x") is None
        True
    """
    pattern = _PREDICT_PATH if method == "POST" else _STATUS_PATH if method == "GET" else None
    match = pattern.fullmatch(path) if pattern else None
    if match is None:
        return None
    name, version, label = match.group(1), match.group(2), match.group(3)
    api = match.group(4) if method == "POST" else None  # case kept: ":PREDICT" is refused
    subresource = match.group(4) if method == "GET" else None
    return (unquote(name) if name else None, _version_number(version) if version else None,
            unquote(label) if label else None, api, subresource)


class BadVersion(ServableError):
    """A version in the URL beyond int64: TensorFlow Serving answers 400 with no body."""


def _version_number(text: str) -> int:
    """The version of a URL, as TF Serving's ``absl::SimpleAtoi`` into an int64 reads it."""
    value = int(text)
    if value > 2**63 - 1:
        raise BadVersion("INVALID_ARGUMENT", f"Failed to convert version: {text} to numeric.")
    return value


class RestApi:
    """Answers REST requests from a model store (see the module docstring).

    Args:
        store: ModelStore. The loaded versions.
        config: ServingConfig. The limits.
        status_of: callable. ``status_of(model_spec) -> GetModelStatusResponse``.
        metadata_of: callable. ``metadata_of(GetModelMetadataRequest) -> response``.
    """

    def __init__(self, store: Any, config: ServingConfig, status_of: Any, metadata_of: Any):
        self.store, self.config = store, config
        self.status_of, self.metadata_of = status_of, metadata_of

    def handle(self, method: str, path: str, body: bytes,
               origin: Optional[str] = None) -> tuple[int, Optional[bytes]]:
        """``(HTTP status, JSON body or None for an empty one)`` for one request.

        As TensorFlow Serving (``http_server.cc``, ``http_rest_api_handler.cc``): an OPTIONS
        request is a CORS preflight, answered 200 when it has an ``Origin`` header with an
        http(s) URL and 400 otherwise, both without a body; a request TF Serving cannot parse
        the path of (a query string, an upper-case ``:PREDICT``, another method) gets
        ``Malformed request: METHOD PATH``; a version beyond int64 gets 400 without a body; a
        path outside ``/v1/`` reaches no handler (``evhttp_server.cc``): libevent's 404 page.
        """
        if not _API_PATH.fullmatch(path):
            return 404, NOT_FOUND_PAGE
        if method == "OPTIONS":
            return (200 if origin and re.search(r"https?://", origin) else 400), None
        try:
            return 200, self._answer(method, path, body)
        except BadVersion:
            return 400, None
        except ServableError as error:
            return HTTP_STATUS.get(error.code, 500), error_body(error.message)
        except Exception as error:  # keep serving whatever happens
            logger.exception("REST request failed")
            return 500, error_body(f"{type(error).__name__}: {error}")

    def _answer(self, method: str, path: str, body: bytes) -> bytes:
        found = route(method, path)
        if found is None or found[3] not in (None, "predict", "classify", "regress"):
            raise ServableError("INVALID_ARGUMENT", f"Malformed request: {method} {path}")
        name, version, label, verb, subresource = found
        if not name:  # ProcessModelStatusRequest / ProcessModelMetadataRequest
            raise ServableError("INVALID_ARGUMENT", "Missing model name in request.")
        if version is not None and label is not None:
            raise ServableError("INVALID_ARGUMENT", f"Both model version ({version}) and model "
                                f"version label ({label}) cannot be supplied.")
        if method == "GET":
            api = apis()
            spec = api.model.ModelSpec()
            _fill_spec(spec, name, version, label)
            if subresource:
                request = api.metadata.GetModelMetadataRequest(metadata_field=["signature_def"])
                request.model_spec.CopyFrom(spec)
                return _proto_json(_metadata_json(self.metadata_of(request)))
            return _proto_json(_message_json(self.status_of(spec)))
        document = _json_body(body)
        if verb == "predict":
            return self._predict(name, version, label, document)
        if verb == "classify":
            return self._classify(name, version, label, document)
        return self._regress(name, version, label, document)

    def _predict(self, name: str, version: Optional[int], label: Optional[str],
                 document: dict) -> bytes:
        """``ProcessPredictRequest``: the signature, then the body's tensors, then the run."""
        api = apis()
        request = api.predict.PredictRequest()
        _fill_spec(request.model_spec, name, version, label, document)
        loaded = self.store.resolve(request.model_spec)
        signature_name = request.model_spec.signature_name
        signature = loaded.signature_defs.get(signature_name)
        if signature is None or signature_name.startswith("__"):
            raise ServableError("INVALID_ARGUMENT", f'Serving signature name: '
                                f'"{signature_name}" not found in signature def')
        tf = api.tf
        inputs = {key: tf.dtypes.as_dtype(info.dtype).name
                  for key, info in signature.inputs.items()}
        arrays, row = predict_tensors(document, inputs)
        for key, array in arrays.items():
            request.inputs[key].CopyFrom(tf.make_tensor_proto(array, dtype=inputs[key]))
        response = run_predict(loaded, request, self.config)
        outputs = {key: tf.make_ndarray(value) for key, value in response.outputs.items()}
        return predictions_body(outputs, row)

    def _regress(self, name: str, version: Optional[int], label: Optional[str],
                 document: dict) -> bytes:
        """TF Serving's checks of a regression (``regressor.cc``): the body as for classify,
        the servable, then the signature, which an export of a classifier never passes."""
        api = apis()
        request = api.classification.ClassificationRequest()  # the same body as classify's
        _fill_spec(request.model_spec, name, version, label, document)
        fill_examples(request, document)
        loaded = self.store.resolve(request.model_spec)
        signature_name = request.model_spec.signature_name or PREDICT
        signature = loaded.signature_defs.get(signature_name)
        if signature is None:
            raise ServableError("INVALID_ARGUMENT",
                                f"No signature was found with the name: {signature_name}")
        if len(signature.inputs) != 1:
            raise ServableError("INVALID_ARGUMENT", "Expected one input Tensor.")
        if len(signature.outputs) != 1:
            raise ServableError("INVALID_ARGUMENT", "Expected one output Tensor.")
        raise ServableError("INVALID_ARGUMENT", "No regression inputs found in SignatureDef: "
                            f"{signature}")

    def _classify(self, name: str, version: Optional[int], label: Optional[str],
                  document: dict) -> bytes:
        api = apis()
        request = api.classification.ClassificationRequest()
        _fill_spec(request.model_spec, name, version, label, document)
        fill_examples(request, document)
        loaded = self.store.resolve(request.model_spec)
        response = run_classify(loaded, request, self.config)
        return results_body([[(c.label, c.score) for c in row.classes]
                             for row in response.result.classifications])


def bind_rest_server(api: RestApi, host: str, port: int,
                     max_concurrent_requests: Optional[int] = None) -> ThreadingHTTPServer:
    """Bind an HTTP server for ``api``; serve it with ``serve_in_background``.

    Binding and serving are two steps so that a taken port fails before any model loads, while
    requests are answered only once the models are loaded (as TensorFlow Serving does).

    Raises:
        OSError: the address cannot be bound.
    """
    limit = api.config.max_request_bytes
    # one thread per connection: requests past the bound are answered 429 at once, not held
    slots = threading.BoundedSemaphore(max_concurrent_requests or 256)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, status: int, body: Optional[bytes]) -> None:
            body = body or b""
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if body is NOT_FOUND_PAGE else
                             "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":  # a HEAD answer has the headers of its body, not the body
                self.wfile.write(body)

        def _serve(self, method: str) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                self._reply(400, error_body("Content-Length is not a number of bytes: "
                                            f"{self.headers.get('Content-Length')!r}"))
                return
            if length > limit:
                self.close_connection = True
                self._reply(413, error_body(f"the request body has {length:,} bytes; the "
                                            f"limit is {limit:,} (max_request_bytes)"))
                return
            body = self.rfile.read(length) if length else b""
            if "gzip" in (self.headers.get("Content-Encoding") or ""):
                body = gunzip(body, limit)
                if body is None:
                    self._reply(413, error_body(f"the request body has more than {limit:,} "
                                                "bytes once uncompressed (max_request_bytes)"))
                    return
            if not slots.acquire(blocking=False):
                self._reply(429, error_body("the server holds its most concurrent requests "
                                            "(max_concurrent_requests); retry later"))
                return
            try:
                self._reply(*api.handle(method, self.path, body, self.headers.get("Origin")))
            finally:
                slots.release()

        # TF Serving hands every method to its handler: GET and POST are served, OPTIONS is a
        # CORS preflight, the others are malformed requests (400, not http.server's 501 page).
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._serve("PUT")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

        def do_PATCH(self) -> None:  # noqa: N802
            self._serve("PATCH")

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve("HEAD")

        def do_OPTIONS(self) -> None:  # noqa: N802
            self._serve("OPTIONS")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            logger.debug("REST %s", format % args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def gunzip(body: bytes, limit: int) -> Optional[bytes]:
    """A gzip body uncompressed, as TF Serving's ``net_http`` does for ``Content-Encoding:
    gzip``: a body that does not uncompress becomes empty (the JSON parse then fails); None
    when it would grow past ``limit`` bytes (a cap TF Serving does not set).

    Example:
        >>> import gzip
        >>> gunzip(gzip.compress(b'{"instances": []}'), 100), gunzip(b"not gzip", 100)
        (b'{"instances": []}', b'')
        >>> gunzip(gzip.compress(b" " * 101), 100) is None
        True
    """
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error:
        return b""
    return None if len(data) > limit else data


def serve_in_background(server: ThreadingHTTPServer) -> None:
    """Answer requests on a bound server from a daemon thread (``server.shutdown()`` stops it)."""
    threading.Thread(target=server.serve_forever, name="devserver-rest", daemon=True).start()


# region JSON <-> protos


def _json_body(body: bytes) -> dict:
    """``ParseJson``: rapidjson's parse (:mod:`tfemotion.serving.tf_json`), then an object."""
    try:
        document = parse(body)
    except JsonParseError as error:
        raise ServableError("INVALID_ARGUMENT", str(error)) from None
    if not isinstance(document, dict):
        raise ServableError("INVALID_ARGUMENT", f"JSON Value: {write_compact(document)} Is not "
                            "object")
    return document


def _fill_spec(spec: Any, name: str, version: Optional[int], label: Optional[str],
               document: Optional[dict] = None) -> None:
    """The ModelSpec a REST call names: model, version or label from the URL; for a request
    with a body, the signature it names (default ``serving_default``, as TF Serving)."""
    spec.name = name
    if document is not None:
        signature_name = document.get("signature_name", "")
        if not isinstance(signature_name, str):  # json_tensor.cc's FormatSignatureError
            raise ServableError("INVALID_ARGUMENT", f"JSON Value: {write_compact(document)} not "
                                "formatted correctly. 'signature_name' key must be a string "
                                "value.")
        spec.signature_name = signature_name or PREDICT
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label


def _message_json(message: Any) -> dict:
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def _proto_json(document: dict) -> bytes:
    """A status or metadata answer, as protobuf's JSON printer with whitespace writes it."""
    return json.dumps(document, indent=1).encode("utf-8")


def _metadata_json(response: Any) -> dict:
    api = apis()
    signature_map = api.metadata.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return {"model_spec": _message_json(response.model_spec),
            "metadata": {"signature_def": _message_json(signature_map)}}


# endregion
