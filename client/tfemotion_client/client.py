"""gRPC client for a TensorFlow Serving model exported by ``tfemotion export``.

The client owns one channel to a server (TensorFlow Serving, or ``tfemotion serve`` for
development), the model name, an optional version or version label, the signatures and a
deadline. Calls that fail with ``UNAVAILABLE`` (server down, restarting, overloaded) are retried
with exponential backoff; any other failure raises :class:`ServingError` at once, with the server
address, the model and the gRPC code and message.

It needs grpcio and protobuf only: the messages and stubs are TF Serving's, generated into
``tfemotion_client.protos`` (the requests: ``tfemotion_client.messages``); tensors are read and
written without NumPy (``tfemotion_client.tensors``).

Example:
    >>> with ServingClient(serving_address, version=1) as client:  # e.g. "127.0.0.1:8500"
    ...     client.predict(["i feel so happy today"])[0].version
    1
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Iterable, Iterator, Optional, Sequence

import grpc

from tfemotion_client.messages import (CLASSIFY, LABEL, LABELS, PREDICT, PROBABILITIES,
                                       check_texts, classify_request, model_spec, predict_request,
                                       target)
from tfemotion_client.protos.tensorflow_serving.apis import (get_model_metadata_pb2,
                                                             get_model_status_pb2,
                                                             model_service_pb2_grpc,
                                                             prediction_service_pb2_grpc)
from tfemotion_client.tensors import dtype_name, shape, to_list

logger = logging.getLogger(__name__)

# The client's settings by default (tfemotion's ServingConfig has the same; a test checks).
DEFAULT_SERVER = "127.0.0.1:8500"
DEFAULT_NAME = "emotion"
DEFAULT_TIMEOUT = 10.0
DEFAULT_RETRIES = 3
DEFAULT_RETRY_BACKOFF = 0.2

APIS = ("predict", "classify")
_MAX_BACKOFF = 5.0
_CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    # Reconnect soon after a refused connection, so that our retries really try again.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # With a name that resolves to several servers (a headless Kubernetes Service via
    # "dns:///name:8500"), spread requests over all of them.
    ("grpc.lb_policy_name", "round_robin"),
]


class ServingError(RuntimeError):
    """A call to the model server failed.

    Attributes:
        code: grpc.StatusCode. The gRPC status code (``None`` if the call never reached gRPC).
        details: str. The server's (or gRPC's) message.
        address: str. The server address.
        model: str. The model name, with ``@version`` or ``@label`` when one was asked for.
        rpc: str. The method: Predict, Classify, GetModelMetadata or GetModelStatus.
        attempts: int. Calls made, retries included.
    """

    def __init__(self, rpc: str, address: str, model: str, code: Any, details: str,
                 attempts: int = 1):
        self.rpc, self.address, self.model = rpc, address, model
        self.code, self.details, self.attempts = code, details, attempts
        code_name = getattr(code, "name", str(code))
        message = f"{rpc} on model '{model}' at {address} failed: {code_name}: {details}"
        if attempts > 1:
            message += f" (after {attempts} attempts)"
        hint = _HINTS.get(code_name)
        super().__init__(message + (f". {hint}" if hint else ""))


_HINTS = {
    "UNAVAILABLE": "Is the server running and reachable at that address? "
                   "(`tfemotion serve --base-path DIR` starts a development server)",
    "DEADLINE_EXCEEDED": "The server did not answer within the deadline; raise --timeout or "
                         "send smaller batches",
    "NOT_FOUND": "Check the model name (--name) and version (--version, --label) against "
                 "what the server serves (ServingClient.status() in Python)",
}


@dataclass(frozen=True)
class Prediction:
    """One text's answer: the label and the score of every label.

    Attributes:
        text: str. The text that was sent.
        label: str. The predicted label (highest score).
        scores: dict[str, float]. Score (probability) per label, in the model's label order.
        version: int or None. The model version that answered.
        labels: list of str or None. A multi-label model's predicted labels (each reached its
            threshold; possibly none); None for a single-label model. ``label`` is then the most
            probable of them, or "" when none was predicted.
    """

    text: str
    label: str
    scores: dict = field(default_factory=dict)
    version: Optional[int] = None
    labels: Optional[list] = None

    def to_dict(self) -> dict[str, Any]:
        """Return the prediction as a JSON-ready dict (``labels`` only for multi-label).

        Example:
            >>> Prediction("so happy", "joy", {"joy": 0.9}, 2).to_dict()
            {'text': 'so happy', 'label': 'joy', 'scores': {'joy': 0.9}, 'version': 2}
        """
        values = dataclasses.asdict(self)
        if self.labels is None:
            del values["labels"]
        return values




class ServingClient:
    """Client for one model on a TensorFlow Serving (or ``tfemotion serve``) gRPC endpoint.

    Args:
        address: str. ``HOST:PORT`` of the gRPC endpoint.
        name: str. Model name.
        version: int or None. Ask for this version.
        label: str or None. Ask for the version behind this label (``stable``, ``canary``).
            Neither: the server's latest version.
        signature: str. Signature for :meth:`predict` (raw text in, label and scores out).
        classify_signature: str. Signature for :meth:`classify` (serialized tf.Example in).
        timeout: float. Deadline of each call, in seconds.
        retries: int. Retries after an ``UNAVAILABLE`` answer.
        retry_backoff: float. Wait before the first retry, in seconds; doubles each time.
        labels: sequence of str or None. Label names in id order; by default they are read
            once per model version from the ``classify`` signature.

    Raises:
        ValueError: both ``version`` and ``label``, or bad numbers.

    Example:
        >>> client = ServingClient(serving_address, version=1)
        >>> client.status()
        [{'version': 1, 'state': 'AVAILABLE', 'error_code': 'OK', 'error_message': ''}]
        >>> client.close()
    """

    def __init__(self, address: str = DEFAULT_SERVER, *, name: str = DEFAULT_NAME,
                 version: Optional[int] = None, label: Optional[str] = None,
                 signature: str = PREDICT, classify_signature: str = CLASSIFY,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 retry_backoff: float = DEFAULT_RETRY_BACKOFF,
                 labels: Optional[Sequence[str]] = None):
        if version is not None and label is not None:
            raise ValueError("Give a version or a label, not both. "
                             f"Received: version={version!r}, label={label!r}")
        if version is not None and (isinstance(version, bool) or not isinstance(version, int)
                                    or version < 1):
            raise ValueError(f"version must be a positive integer. Received: version={version!r}")
        if timeout <= 0 or retries < 0 or retry_backoff < 0:
            raise ValueError("timeout must be > 0, retries and retry_backoff >= 0. Received: "
                             f"timeout={timeout!r}, retries={retries!r}, "
                             f"retry_backoff={retry_backoff!r}")
        self.address, self.name, self.version, self.label = address, name, version, label
        self.signature, self.classify_signature = signature, classify_signature
        self.timeout, self.retries, self.retry_backoff = timeout, retries, retry_backoff
        self.labels = tuple(labels) if labels is not None else None
        self._label_cache: dict[Optional[int], tuple[str, ...]] = {}
        self._channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._prediction = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    # region calls
    @property
    def model(self) -> str:
        """The model name as shown in messages: ``emotion``, ``emotion@2``, ``emotion@stable``."""
        suffix = self.version if self.version is not None else self.label
        return self.name + (f"@{suffix}" if suffix is not None else "")

    def _call(self, stub: Any, rpc: str, request: Any) -> Any:
        delay = self.retry_backoff
        for attempt in range(1, self.retries + 2):
            try:
                return getattr(stub, rpc)(request, timeout=self.timeout)
            except grpc.RpcError as error:
                code, details = error.code(), error.details()
                if code != grpc.StatusCode.UNAVAILABLE or attempt > self.retries:
                    raise ServingError(rpc, self.address, self.model, code, details,
                                       attempt) from None
                logger.debug("%s at %s: UNAVAILABLE (%s); retry %d/%d in %.2fs", rpc,
                             self.address, details, attempt, self.retries, delay)
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, _MAX_BACKOFF)
        raise AssertionError("unreachable")  # pragma: no cover

    def predict(self, texts: Any) -> list[Prediction]:
        """Classify texts with the Predict API on the raw-text signature.

        Args:
            texts: str or list of str. Texts to classify.

        Returns:
            One :class:`Prediction` per text, in order.

        Raises:
            TypeError: texts are not strings.
            ValueError: no texts.
            ServingError: the server refused or could not be reached.

        Example:
            >>> prediction = ServingClient(serving_address).predict("i am so happy")[0]
            >>> prediction.text, prediction.label in prediction.scores, prediction.version
            ('i am so happy', True, 1)
        """
        texts = check_texts(texts)
        request = predict_request(texts, self.name, version=self.version, label=self.label,
                                  signature=self.signature)
        response = self._call(self._prediction, "Predict", request)
        outputs = dict(response.outputs)
        missing = {LABELS if LABELS in outputs else LABEL, PROBABILITIES} - set(outputs)
        if missing:
            raise ServingError("Predict", self.address, self.model, "BAD_RESPONSE",
                               f"signature '{self.signature}' did not return {sorted(missing)}; "
                               f"it returned {sorted(outputs)}")
        version = _answering_version(response)
        probabilities = to_list(outputs[PROBABILITIES])
        names = self._label_names(version, (shape(outputs[PROBABILITIES]) or [0])[-1])
        decided = to_list(outputs[LABELS if LABELS in outputs else LABEL])
        predictions = []
        for text, row, answer in zip(texts, probabilities, decided):
            scores = {name: float(p) for name, p in zip(names, row)}
            if LABELS in outputs:  # multi-label: the names the server predicted, then ""
                found = [b.decode("utf-8") for b in answer if b]
                best = max(found, key=lambda name: scores.get(name, 0.0), default="")
                predictions.append(Prediction(text, best, scores, version, labels=found))
            else:
                predictions.append(Prediction(text, answer.decode("utf-8"), scores, version))
        return predictions

    def classify(self, texts: Any) -> list[Prediction]:
        """Classify texts with the Classify API (one ``tf.Example`` per text).

        Args:
            texts: str or list of str. Texts to classify.

        Returns:
            One :class:`Prediction` per text, in order. The Classify API returns every label's
            score and no decision: ``label`` is the highest-scoring one, and for a multi-label
            model ``labels`` stays None (use :meth:`predict` for the thresholded labels).

        Raises:
            TypeError: texts are not strings.
            ValueError: no texts.
            ServingError: the server refused or could not be reached.

        Example:
            >>> classified = ServingClient(serving_address).classify(["i am so happy"])[0]
            >>> round(sum(classified.scores.values()), 4)
            1.0
        """
        texts = check_texts(texts)
        response = self._classify(texts)
        version = _answering_version(response)
        predictions = []
        for text, result in zip(texts, response.result.classifications):
            scores = {c.label: float(c.score) for c in result.classes}
            label = max(scores, key=scores.get) if scores else ""
            predictions.append(Prediction(text, label, scores, version))
        return predictions

    def _classify(self, texts: list[str], version: Optional[int] = None) -> Any:
        version = version if version is not None else self.version
        request = classify_request(texts, self.name, version=version,
                                   label=self.label if version is None else None,
                                   signature=self.classify_signature)
        return self._call(self._prediction, "Classify", request)

    def _label_names(self, version: Optional[int], num_labels: int) -> tuple[str, ...]:
        """Label names in id order: given, or read once per version from the Classify API."""
        if self.labels is not None:
            names = self.labels
        elif version in self._label_cache:
            names = self._label_cache[version]
        else:
            try:
                response = self._classify([""], version)
                names = tuple(c.label for c in response.result.classifications[0].classes)
            except ServingError as error:
                logger.warning("Label names unknown (%s); scores are keyed by label id.", error)
                names = ()
            self._label_cache[version] = names
        if len(names) != num_labels:
            return tuple(str(i) for i in range(num_labels))
        return names

    def metadata(self) -> dict[str, Any]:
        """Return the model's signatures: inputs and outputs with dtype and shape.

        Returns:
            ``{"model", "version", "signatures": {key: {"method", "inputs", "outputs"}}}``
            where each tensor is ``{"dtype": "DT_STRING", "shape": [-1]}`` (-1: any size;
            shape None: unknown rank).

        Raises:
            ServingError: the server refused or could not be reached.

        Example:
            >>> sorted(ServingClient(serving_address).metadata()["signatures"])
            ['classify', 'encoded', 'encoded_int64', 'serving_default', 'tokenize']
        """
        request = get_model_metadata_pb2.GetModelMetadataRequest()
        model_spec(request.model_spec, self.name, self.version, self.label)
        request.metadata_field.append("signature_def")
        response = self._call(self._prediction, "GetModelMetadata", request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        if not response.metadata["signature_def"].Unpack(signature_map):
            raise ServingError("GetModelMetadata", self.address, self.model, "BAD_RESPONSE",
                               "metadata 'signature_def' holds a "
                               f"{response.metadata['signature_def'].TypeName()}, "
                               "not a tensorflow.serving.SignatureDefMap")
        signatures = {key: {"method": sig.method_name,
                            "inputs": {k: _tensor_info(v) for k, v in sig.inputs.items()},
                            "outputs": {k: _tensor_info(v) for k, v in sig.outputs.items()}}
                      for key, sig in sorted(signature_map.signature_def.items())
                      if not key.startswith("__")}  # e.g. __saved_model_init_op
        return {"model": response.model_spec.name,
                "version": response.model_spec.version.value, "signatures": signatures}

    def status(self) -> list[dict[str, Any]]:
        """Return the state of the model's versions (GetModelStatus).

        Returns:
            ``[{"version", "state", "error_code", "error_message"}]``, state one of START,
            LOADING, AVAILABLE, UNLOADING, END.

        Raises:
            ServingError: the server refused or could not be reached.

        Example:
            >>> ServingClient(serving_address).status()[0]["state"]
            'AVAILABLE'
        """
        request = get_model_status_pb2.GetModelStatusRequest()
        model_spec(request.model_spec, self.name, self.version, self.label)
        response = self._call(self._models, "GetModelStatus", request)
        state_name = get_model_status_pb2.ModelVersionStatus.State.Name
        return [{"version": s.version, "state": state_name(s.state),
                 "error_code": _enum_name(s.status, "error_code"),
                 "error_message": s.status.error_message}
                for s in sorted(response.model_version_status, key=lambda s: s.version)]
    # endregion

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> "ServingClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ServingClient({self.address!r}, model={self.model!r})"


def _answering_version(response: Any) -> Optional[int]:
    """The model version a Predict or Classify response says answered, if it says."""
    spec = response.model_spec
    return spec.version.value if spec.HasField("version") else None


def _enum_name(message: Any, field_name: str) -> str:
    value = getattr(message, field_name)
    names = message.DESCRIPTOR.fields_by_name[field_name].enum_type.values_by_number
    return names[value].name if value in names else str(value)


def _tensor_info(info: Any) -> dict[str, Any]:
    dims = None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]
    return {"dtype": dtype_name(info.dtype), "shape": dims}


def query_stream(texts: Iterable[str], *, server: str = DEFAULT_SERVER,
                 name: str = DEFAULT_NAME, version: Optional[int] = None,
                 label: Optional[str] = None, api: str = "predict", batch_size: int = 64,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 retry_backoff: float = DEFAULT_RETRY_BACKOFF) -> Iterator[Prediction]:
    """Classify an iterable of texts of any length on a server, one request per batch.

    Texts are read lazily and sent ``batch_size`` at a time (keep it within the server's
    batch cap: ``serving/batching.config``); the predictions come back in order, one per text.

    Args:
        texts: iterable of str.
        server: str. ``HOST:PORT`` of the gRPC endpoint, or a gRPC target (``dns:///name:8500``).
        name: str. Model name.
        version: int or None. Model version to ask for.
        label: str or None. Version label to ask for (``stable``, ``canary``).
        api: str. ``predict`` (Predict API, raw-text signature) or ``classify`` (Classify API).
        batch_size: int. Texts per request.
        timeout, retries, retry_backoff: as in :class:`ServingClient`.

    Raises:
        ValueError: bad ``api``, ``batch_size`` or ``server``, or both ``version`` and ``label``.
        ServingError: the server refused or could not be reached.

    Example:
        >>> texts = ["so happy", "so sad", "so scared"]
        >>> [p.text for p in query_stream(texts, server=serving_address, batch_size=2)]
        ['so happy', 'so sad', 'so scared']
    """
    if api not in APIS:
        raise ValueError(f"api must be one of {APIS}. Received: api={api!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1. Received: batch_size={batch_size!r}")
    iterator = iter(texts)
    with ServingClient(target(server), name=name, version=version, label=label,
                       timeout=timeout, retries=retries, retry_backoff=retry_backoff) as client:
        call = client.predict if api == "predict" else client.classify
        while True:
            batch = list(islice(iterator, batch_size))
            if not batch:
                return
            yield from call(batch)
