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

Errors answer ``{"error": "message"}`` with the HTTP status TensorFlow Serving maps the gRPC
status to (INVALID_ARGUMENT and FAILED_PRECONDITION 400, NOT_FOUND 404, UNAVAILABLE 503...).
Unlike TensorFlow Serving, a body larger than ``ServingConfig.max_request_bytes`` is refused
(413).

Example:
    >>> route("POST", "/v1/models/emotion/labels/stable:predict")
    ('emotion', None, 'stable', 'predict', None)
    >>> route("GET", "/v1/models/emotion/versions/2/metadata")
    ('emotion', 2, None, None, 'metadata')
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import unquote

import numpy as np

from tfemotion.config import ServingConfig
from tfemotion.export.servable import ServableError
from tfemotion.serving.apis import apis
from tfemotion.serving.handlers import run_classify, run_predict
from tfemotion.export.signatures import PREDICT

logger = logging.getLogger(__name__)

# TensorFlow Serving's path patterns (http_rest_api_util.cc), case-insensitive.
_PREDICT_PATH = re.compile(r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                           r":(classify|regress|predict)", re.I)
_STATUS_PATH = re.compile(r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?"
                          r"(?:/(metadata))?", re.I)
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
               origin: Optional[str] = None) -> tuple[int, Optional[dict]]:
        """``(HTTP status, JSON body or None for an empty one)`` for one request.

        As TensorFlow Serving (``http_server.cc``, ``http_rest_api_handler.cc``): an OPTIONS
        request is a CORS preflight, answered 200 when it has an ``Origin`` header with an
        http(s) URL and 400 otherwise, both without a body; a request TF Serving cannot parse
        the path of (a query string, an upper-case ``:PREDICT``, another method) gets
        ``Malformed request: METHOD PATH``; a version beyond int64 gets 400 without a body.
        """
        if method == "OPTIONS":
            return (200 if origin and re.search(r"https?://", origin) else 400), None
        try:
            return 200, self._answer(method, path, body)
        except BadVersion:
            return 400, None
        except ServableError as error:
            return HTTP_STATUS.get(error.code, 500), {"error": error.message}
        except Exception as error:  # keep serving whatever happens
            logger.exception("REST request failed")
            return 500, {"error": f"{type(error).__name__}: {error}"}

    def _answer(self, method: str, path: str, body: bytes) -> dict:
        found = route(method, path)
        if found is None or not found[0] or found[3] not in (None, "predict", "classify",
                                                               "regress"):
            raise ServableError("INVALID_ARGUMENT", f"Malformed request: {method} {path}")
        name, version, label, verb, subresource = found
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
                return _metadata_json(self.metadata_of(request))
            return _message_json(self.status_of(spec))
        document = _json_body(body)
        if verb == "predict":
            return self._predict(name, version, label, document)
        if verb == "classify":
            return self._classify(name, version, label, document)
        return self._regress(name, version, label, document)

    def _predict(self, name: str, version: Optional[int], label: Optional[str],
                 document: dict) -> dict:
        api = apis()
        request = api.predict.PredictRequest()
        _fill_spec(request.model_spec, name, version, label, document)
        loaded = self.store.resolve(request.model_spec)
        signature = loaded.signature(request.model_spec.signature_name)
        row = "instances" in document
        _check_predict_body(document)
        columns = _row_columns(document["instances"], list(signature.inputs)) if row else \
            _columnar(document["inputs"], list(signature.inputs))
        for key, values in columns.items():
            info = signature.inputs.get(key)
            if info is None:
                raise ServableError("INVALID_ARGUMENT", f"unknown input '{key}'; signature "
                                    f"'{request.model_spec.signature_name}' takes "
                                    f"{sorted(signature.inputs)}")
            request.inputs[key].CopyFrom(_tensor_proto(key, values, info.dtype))
        response = run_predict(loaded, request, self.config)
        outputs = {key: api.tf.make_ndarray(value) for key, value in response.outputs.items()}
        if row:
            return {"predictions": _rows(outputs)}
        single = next(iter(outputs.values())) if len(outputs) == 1 else None
        return {"outputs": _to_json(next(iter(outputs)), single) if single is not None else
                {key: _to_json(key, value) for key, value in outputs.items()}}

    def _regress(self, name: str, version: Optional[int], label: Optional[str],
                 document: dict) -> dict:
        """TF Serving's checks of a regression (``regressor.cc``): the body as for classify,
        the servable, then the signature, which an export of a classifier never passes."""
        api = apis()
        request = api.classification.ClassificationRequest()  # the same body as classify's
        _fill_spec(request.model_spec, name, version, label, document)
        _fill_examples(request, document)
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
                  document: dict) -> dict:
        api = apis()
        request = api.classification.ClassificationRequest()
        _fill_spec(request.model_spec, name, version, label, document)
        _fill_examples(request, document)
        loaded = self.store.resolve(request.model_spec)
        response = run_classify(loaded, request, self.config)
        return {"results": [[[c.label, c.score] for c in row.classes]
                            for row in response.result.classifications]}


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

        def _reply(self, status: int, document: Optional[dict]) -> None:
            try:
                body = b"" if document is None else json.dumps(document, indent=1).encode(
                    "utf-8")
            except (TypeError, ValueError) as error:  # never leave the client without an answer
                logger.exception("REST answer is not JSON")
                status, body = 500, json.dumps({"error": f"{error}"}).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
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
                self._reply(400, {"error": "Content-Length is not a number of bytes: "
                                           f"{self.headers.get('Content-Length')!r}"})
                return
            if length > limit:
                self.close_connection = True
                self._reply(413, {"error": f"the request body has {length:,} bytes; the limit "
                                           f"is {limit:,} (max_request_bytes)"})
                return
            body = self.rfile.read(length) if length else b""
            if not slots.acquire(blocking=False):
                self._reply(429, {"error": "the server holds its most concurrent requests "
                                           "(max_concurrent_requests); retry later"})
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


def serve_in_background(server: ThreadingHTTPServer) -> None:
    """Answer requests on a bound server from a daemon thread (``server.shutdown()`` stops it)."""
    threading.Thread(target=server.serve_forever, name="devserver-rest", daemon=True).start()


# region JSON <-> protos


def _json_body(body: bytes) -> dict:
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ServableError("INVALID_ARGUMENT", f"JSON Parse error: {error}") from None
    if not isinstance(document, dict):
        raise ServableError("INVALID_ARGUMENT", "JSON Value: the request body must be an object")
    return document


def _fill_examples(request: Any, document: dict) -> None:
    """The examples of a classify (or regress) body, checked before the servable is looked up,
    as TF Serving parses the body first."""
    examples = document.get("examples")
    if not isinstance(examples, list):
        raise ServableError("INVALID_ARGUMENT", "'examples' must be a list of objects, one "
                            "per example")
    if "context" in document:
        target = request.input.example_list_with_context
        _fill_example(target.context, document["context"], "context")
    else:
        target = request.input.example_list
    for index, example in enumerate(examples):
        _fill_example(target.examples.add(), example, f"examples[{index}]")


def _fill_spec(spec: Any, name: str, version: Optional[int], label: Optional[str],
               document: Optional[dict] = None) -> None:
    """The ModelSpec a REST call names: model, version or label from the URL; for a request
    with a body, the signature it names (default ``serving_default``, as TF Serving)."""
    spec.name = name
    if document is not None:
        signature_name = document.get("signature_name", "")
        if not isinstance(signature_name, str):  # json_tensor.cc's FormatSignatureError
            raise ServableError("INVALID_ARGUMENT", f"JSON Value: {_compact(document)} not "
                                "formatted correctly. 'signature_name' key must be a string "
                                "value.")
        spec.signature_name = signature_name or PREDICT
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label


def _check_predict_body(document: dict) -> None:
    """The checks and texts of json_tensor.cc's FillPredictRequestFromJson."""
    instances = document.get("instances")
    if "instances" in document and "inputs" in document:
        problem = ("Not formatted correctly expecting only one of 'inputs' or 'instances' keys "
                   "to exist ")
    elif "instances" in document and not isinstance(instances, list):
        problem = "Excepting 'instances' to be an list/array"  # sic, TF Serving's text
    elif "instances" in document and not instances:
        problem = "No values in 'instances' array"
    elif "instances" not in document and "inputs" not in document:
        raise ServableError("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key")
    else:
        return
    raise ServableError("INVALID_ARGUMENT", f"JSON Value: {_compact(document)} {problem}")


def _compact(document: Any) -> str:
    """A JSON value as rapidjson's ``Writer`` prints it in TF Serving's messages: no spaces."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _row_columns(instances: Any, input_keys: list[str]) -> dict[str, list]:
    """Row form: one instance per example; a bare value when the signature has one input."""
    if not isinstance(instances, list) or not instances:
        raise ServableError("INVALID_ARGUMENT", "'instances' must be a non-empty list")
    if len(input_keys) == 1 and not all(isinstance(i, dict) and "b64" not in i
                                        for i in instances):
        return {input_keys[0]: instances}
    columns: dict[str, list] = {}
    for index, instance in enumerate(instances):
        if not isinstance(instance, dict):
            raise ServableError("INVALID_ARGUMENT", f"instances[{index}] must be an object "
                                f"keyed by input name ({input_keys})")
        for key, value in instance.items():
            columns.setdefault(key, []).append(value)
    return columns


def _columnar(inputs: Any, input_keys: list[str]) -> dict[str, Any]:
    if isinstance(inputs, dict) and not ("b64" in inputs and len(inputs) == 1):
        return inputs
    if len(input_keys) != 1:
        raise ServableError("INVALID_ARGUMENT", f"'inputs' must be an object keyed by input name "
                            f"({input_keys})")
    return {input_keys[0]: inputs}


def _tensor_proto(key: str, values: Any, dtype: int) -> Any:
    tf = apis().tf
    tf_dtype = tf.dtypes.as_dtype(dtype)
    try:
        if tf_dtype == tf.string:
            array = np.array(_decode_strings(values), dtype=object)
        else:
            _check_leaves(key, values, tf_dtype)
            array = np.array(values, dtype=tf_dtype.as_numpy_dtype)
        return tf.make_tensor_proto(array, dtype=tf_dtype)
    except (TypeError, ValueError, OverflowError) as error:
        raise ServableError("INVALID_ARGUMENT", f"input '{key}': cannot make a "
                            f"{tf_dtype.name} tensor of the JSON values: {error}") from None


def _check_leaves(key: str, value: Any, tf_dtype: Any) -> None:
    """Refuse JSON values that numpy would quietly convert (true -> 1, 1.7 -> 1, "3" -> 3)."""
    if isinstance(value, list):
        for item in value:
            _check_leaves(key, item, tf_dtype)
        return
    if tf_dtype.is_bool:
        ok = isinstance(value, bool)
    elif tf_dtype.is_integer:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok:
        raise ServableError("INVALID_ARGUMENT", f"input '{key}': a {tf_dtype.name} tensor "
                            f"cannot hold the JSON value {json.dumps(value)}")


def _decode_strings(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode_strings(v) for v in value]
    if isinstance(value, dict) and set(value) == {"b64"}:
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (ValueError, TypeError):
            raise ServableError("INVALID_ARGUMENT", "a 'b64' value is not base64") from None
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ServableError("INVALID_ARGUMENT", f"a string input got {type(value).__name__} "
                        f"{value!r}; send strings or {{\"b64\": ...}}")


def _to_json(key: str, value: Any) -> Any:
    value = np.asarray(value)
    if value.dtype == object or value.dtype.kind == "S":  # DT_STRING
        if key.endswith("_bytes"):
            return _map(value, lambda b: {"b64": base64.b64encode(b).decode("ascii")})
        return _map(value, lambda b: b.decode("utf-8", "replace"))
    return value.tolist()


def _map(value: Any, convert: Any) -> Any:
    if isinstance(value, bytes):
        return convert(value)
    value = np.asarray(value)
    if value.ndim == 0:
        return convert(value.item())
    return [_map(item, convert) for item in value]


def _rows(outputs: dict[str, np.ndarray]) -> list:
    keys = list(outputs)
    rows = len(next(iter(outputs.values())))
    if len(keys) == 1:
        return [_to_json(keys[0], outputs[keys[0]][i]) for i in range(rows)]
    return [{key: _to_json(key, outputs[key][i]) for key in keys} for i in range(rows)]


def _fill_example(example: Any, values: Any, where: str) -> None:
    if not isinstance(values, dict):
        raise ServableError("INVALID_ARGUMENT", f"{where} must be an object of features")
    for name, value in values.items():
        items = value if isinstance(value, list) else [value]
        feature = example.features.feature[name]
        if all(isinstance(v, str) or (isinstance(v, dict) and set(v) == {"b64"}) for v in items):
            feature.bytes_list.value.extend(_decode_strings(items))
        elif all(isinstance(v, bool) or isinstance(v, int) for v in items):
            feature.int64_list.value.extend(int(v) for v in items)
        elif all(isinstance(v, (int, float)) for v in items):
            feature.float_list.value.extend(float(v) for v in items)
        else:
            raise ServableError("INVALID_ARGUMENT", f"{where} feature '{name}' mixes value types "
                                f"or holds {type(items[0]).__name__}")


def _message_json(message: Any) -> dict:
    from google.protobuf import json_format

    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def _metadata_json(response: Any) -> dict:
    api = apis()
    signature_map = api.metadata.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return {"model_spec": _message_json(response.model_spec),
            "metadata": {"signature_def": _message_json(signature_map)}}


# endregion
