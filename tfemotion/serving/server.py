"""A development server with TensorFlow Serving's APIs and semantics. For development and tests.

Production serving is TensorFlow Serving (``serving/`` has the Docker, Kubernetes and config
files). TensorFlow Serving is a C++ binary that cannot be pip-installed; this server lets you
try an export, write clients and run tests with nothing but the Python packages, and what passes
it should pass TensorFlow Serving:

* versions are loaded through TensorFlow Serving's own loading path (a session, SignatureDef
  tensor names; :mod:`tfemotion.export.servable`), from ``BASE/NAME/VERSION`` or a ``models.config``,
  picked up without a restart, warmed up before they take traffic (:mod:`tfemotion.serving.modelstore`);
* gRPC (``port``): PredictionService ``Predict``, ``Classify``, ``GetModelMetadata`` and
  ModelService ``GetModelStatus``, with the official ``tensorflow-serving-api`` stubs;
* REST (``rest_port``, default 8501): status, metadata, ``:predict`` and ``:classify``
  (:mod:`tfemotion.serving.rest`);
* ``enable_batching``: concurrent requests merged as TensorFlow Serving's batching does, with
  the parameters of ``batching_parameters_file`` (:mod:`tfemotion.serving.batching`).

Unlike TensorFlow Serving it binds to 127.0.0.1 unless told otherwise and caps the request size,
the batch size and the text length (:class:`~tfemotion.config.ServingConfig`); it has no
Prometheus metrics. Every bad request gets a status (INVALID_ARGUMENT, NOT_FOUND,
FAILED_PRECONDITION...) with a message, and the server keeps serving.

Example:
    >>> from tfemotion.config import ServingConfig
    >>> from tfemotion.serving.client import ServingClient
    >>> with start_server(export_base, ServingConfig(port=0)) as server:  # BASE of BASE/NAME/1
    ...     ServingClient(server.address).predict(["i am so happy"])[0].version
    1
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from pathlib import Path
from typing import Any, Optional

from tfemotion.config import ServingConfig
from tfemotion.serving.modelstore import ModelStore
from tfemotion.export.servable import ServableError
from tfemotion.serving.apis import address, apis
from tfemotion.serving.handlers import run_classify, run_predict

logger = logging.getLogger(__name__)


def _spec_of(request: Any) -> Any:
    if not request.HasField("model_spec"):
        raise ServableError("INVALID_ARGUMENT", "Missing ModelSpec")
    return request.model_spec


class _Servicers:
    """Both gRPC services over one model store; each failure becomes a gRPC status."""

    def __init__(self, store: ModelStore, config: ServingConfig):
        self.store, self.config = store, config

    def _answer(self, context: Any, method: Any, request: Any) -> Any:
        grpc = apis().grpc
        try:
            return method(request)
        except ServableError as error:
            context.abort(getattr(grpc.StatusCode, error.code), error.message)
        except Exception as error:  # keep serving whatever happens
            logger.exception("Request failed")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")

    def _resolve(self, request: Any) -> Any:
        """The version a request names; as TF Serving's services, a request without a
        ModelSpec is refused first (predict_impl.cc, classification_service.cc...)."""
        return self.store.resolve(_spec_of(request))

    def Predict(self, request: Any, context: Any) -> Any:
        return self._answer(context, lambda r: run_predict(
            self._resolve(r), r, self.config), request)

    def Classify(self, request: Any, context: Any) -> Any:
        return self._answer(context, lambda r: run_classify(
            self._resolve(r), r, self.config), request)

    def GetModelMetadata(self, request: Any, context: Any) -> Any:
        return self._answer(context, self._metadata, request)

    def GetModelStatus(self, request: Any, context: Any) -> Any:
        return self._answer(context, self._status, request)

    def _metadata(self, request: Any) -> Any:
        """get_model_metadata_impl.cc: the spec, the fields, then the servable."""
        api = apis()
        spec = _spec_of(request)
        if not request.metadata_field:
            raise ServableError("INVALID_ARGUMENT", "GetModelMetadataRequest must specify at "
                                "least one metadata_field")
        for field in request.metadata_field:
            if field != "signature_def":
                raise ServableError("INVALID_ARGUMENT", f"Metadata field {field} is not "
                                    "supported")
        servable = self.store.resolve(spec)
        response = api.metadata.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signature_map = api.metadata.SignatureDefMap()
        for key, signature in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def _status(self, request: Any) -> Any:
        api = apis().status
        response = api.GetModelStatusResponse()
        for version, state in self.store.version_states(_spec_of(request)):
            item = response.model_version_status.add(version=version)
            item.state = api.ModelVersionStatus.State.Value(state.state)
            codes = item.status.DESCRIPTOR.fields_by_name["error_code"].enum_type.values_by_name
            item.status.error_code = codes[state.error_code].number
            item.status.error_message = state.error_message
        return response


def _status_request(spec: Any) -> Any:
    request = apis().status.GetModelStatusRequest()
    request.model_spec.CopyFrom(spec)
    return request


def _servicer(store: ModelStore, config: ServingConfig) -> _Servicers:
    """The servicers on the official base classes (UNIMPLEMENTED for Regress and the rest)."""
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    class Servicer(_Servicers, prediction_service_pb2_grpc.PredictionServiceServicer,
                   model_service_pb2_grpc.ModelServiceServicer):
        pass

    return Servicer(store, config)


class DevServer:
    """The development server; start it, use ``address``, stop it (or use ``with``).

    Args:
        base_path: str or Path or None. Folder holding ``NAME/VERSION`` SavedModels. None: use
            the base paths written in ``config.model_config_file``.
        config: ServingConfig or None. host, port and rest_port (0: any free port; rest_port
            None: no REST), name, limits, workers, poll_interval, model_config_file,
            session_config_file, enable_batching and batching_parameters_file.

    Raises:
        ValueError: the base path is not a folder, or the model or session config cannot be
            read.

    Example:
        >>> server = DevServer(export_base, ServingConfig(port=0, rest_port=0)).start()
        >>> server.address, server.rest_url
        ('127.0.0.1:...', 'http://127.0.0.1:...')
        >>> server.stop()
    """

    def __init__(self, base_path: Any, config: Optional[ServingConfig] = None):
        self.config = config or ServingConfig()
        base = Path(base_path).expanduser() if base_path is not None else None
        if base is None and not self.config.model_config_file:
            raise ValueError("Give a base path or a model config file. Received: base_path=None")
        if base is not None and not base.is_dir():
            raise ValueError(f"base_path must be a folder holding NAME/VERSION SavedModels. "
                             f"Received: base_path={str(base_path)!r}")
        self.base_path = base
        self.store = ModelStore(base, self.config, self._make_runner())
        self.port: Optional[int] = None
        self.rest_port: Optional[int] = None
        self._server: Any = None
        self._rest: Any = None
        self._stop = threading.Event()
        self._poller: Optional[threading.Thread] = None

    @property
    def address(self) -> str:
        """``HOST:PORT`` of the gRPC API, for clients."""
        return address(self.config.host, self.port)

    @property
    def rest_url(self) -> Optional[str]:
        """``http://HOST:PORT`` of the REST API (None without one)."""
        return None if self.rest_port is None else \
            f"http://{address(self.config.host, self.rest_port)}"

    def _batching_parameters(self) -> Any:
        """The batching parameters in force, or None without batching."""
        if not self.config.enable_batching:
            return None
        from tfemotion.serving.batching import BatchingParameters

        return (BatchingParameters.read(self.config.batching_parameters_file)
                if self.config.batching_parameters_file else BatchingParameters())

    def _make_runner(self) -> Any:
        """With ``enable_batching``: a batching scheduler in front of each loaded version."""
        params = self._batching_parameters()
        if params is None:
            return None
        from tfemotion.serving.batching import BatchScheduler

        if params.max_batch_size > self.config.max_batch_size:
            logger.warning("max_batch_size %d (batching parameters) is above the %d texts a "
                           "request may carry: requests are still capped at %d",
                           params.max_batch_size, self.config.max_batch_size,
                           self.config.max_batch_size)
        logger.info("Batching: %s", params)
        return lambda loaded: BatchScheduler(loaded.servable.run, params)

    def start(self) -> "DevServer":
        """Bind, load the models, and serve from background threads; return self."""
        api = apis()
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        servicers = _servicer(self.store, self.config)
        self.workers, self.max_concurrent_requests = concurrency(
            self.config, self._batching_parameters())
        server = api.grpc.server(
            futures.ThreadPoolExecutor(self.workers, thread_name_prefix="devserver"),
            maximum_concurrent_rpcs=self.max_concurrent_requests,  # past it: RESOURCE_EXHAUSTED
            options=[("grpc.max_receive_message_length", self.config.max_request_bytes),
                     ("grpc.max_send_message_length", -1),
                     ("grpc.so_reuseport", 0)])  # fail loudly if the port is taken
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicers, server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(servicers, server)
        wanted = address(self.config.host, self.config.port)
        try:
            port = server.add_insecure_port(wanted)
        except RuntimeError:
            port = 0
        if not port:  # before loading any model: a taken port fails at once
            raise OSError(f"Cannot bind {wanted} (in use, or not an address of this machine); "
                          f"choose another with --port. Received: host={self.config.host!r}, "
                          f"port={self.config.port!r}")
        rest = None
        if self.config.rest_port is not None:
            rest = self._bind_rest(servicers)  # also before loading: a taken port fails at once
        try:
            self.store.refresh(settle=False)
        except BaseException:
            if rest is not None:
                rest.server_close()
            raise
        server.start()
        self._server, self.port = server, port
        if rest is not None:
            from tfemotion.serving.rest import serve_in_background

            serve_in_background(rest)
            self._rest, self.rest_port = rest, rest.server_address[1]
        for name, model in self.models().items():
            if "AVAILABLE" not in model["versions"].values():
                logger.warning("No version of model '%s' is loaded yet; waiting for one to "
                               "appear under %s", name, self.store.policies[name].folder)
        self._poller = threading.Thread(target=self._poll, name="devserver-poll", daemon=True)
        self._poller.start()
        served = "; ".join(
            f"{name}: " + (", ".join(f"version {v} {state}" for v, state in
                                     model["versions"].items()) or "no version yet")
            for name, model in self.models().items())
        rest = f", REST on {self.rest_url}" if self.rest_url else ""
        logger.info("Development server: gRPC on %s%s, serving %s; %d requests at a time, at "
                    "most %d held (Ctrl-C stops it)", self.address, rest, served, self.workers,
                    self.max_concurrent_requests)
        return self

    def _bind_rest(self, servicers: Any) -> Any:
        from tfemotion.serving.rest import RestApi, bind_rest_server

        api = RestApi(self.store, self.config,
                      status_of=lambda spec: servicers._status(_status_request(spec)),
                      metadata_of=servicers._metadata)
        try:
            return bind_rest_server(api, self.config.host, self.config.rest_port,
                                    self.max_concurrent_requests)
        except OSError as error:
            raise OSError(f"Cannot bind the REST port {self.config.host}:"
                          f"{self.config.rest_port} ({error.strerror}); choose another with "
                          f"--rest-port (or 'none'). Received: rest_port="
                          f"{self.config.rest_port!r}") from None

    def _poll(self) -> None:
        while not self._stop.wait(self.config.poll_interval):
            try:
                self.store.refresh()
            except Exception:  # keep polling
                logger.exception("Looking for new versions failed")

    def refresh(self) -> None:
        """Look for new or removed versions now (the poller also does it every poll_interval)."""
        self.store.refresh()

    def models(self) -> dict[str, dict[str, Any]]:
        """Return ``{name: {"versions": {version: state}, "labels": {label: version}}}``."""
        return self.store.models()

    def wait(self) -> None:
        """Block until the server stops."""
        self._server.wait_for_termination()

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds) and stop polling."""
        self._stop.set()
        if self._rest is not None:
            self._rest.shutdown()
            self._rest.server_close()
        if self._server is not None:
            self._server.stop(grace).wait()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(timeout=5)

    def __enter__(self) -> "DevServer":
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# Requests held at once by default, running or waiting for a worker: TF Serving takes many
# concurrent clients; 256 requests of max_request_bytes (4 MB) bound the memory at about 1 GB.
HELD_REQUESTS = 256


def concurrency(config: ServingConfig, batching: Any = None) -> tuple[int, int]:
    """``(workers, max_concurrent_requests)``: the settings given, or sized for the batching.

    Without batching 8 workers keep two cores busy. With batching, a batch fills only if as
    many one-text requests run at once as it holds: the workers cover a full batch on every
    batch thread and the next one filling; the bound adds what the batch queue holds.

    Example:
        >>> from tfemotion.serving.batching import BatchingParameters
        >>> concurrency(ServingConfig())
        (8, 256)
        >>> concurrency(ServingConfig(), BatchingParameters(max_batch_size=32,
        ...                                                 num_batch_threads=1))
        (64, 384)
    """
    if batching is None:
        workers = config.workers or 8
        return workers, config.max_concurrent_requests or max(HELD_REQUESTS, 4 * workers)
    size = batching.execution_batch_size
    workers = config.workers or min(1024, max(8, size * (batching.num_batch_threads + 1)))
    bound = config.max_concurrent_requests or max(
        HELD_REQUESTS, 4 * workers, workers + size * batching.max_enqueued_batches)
    return workers, bound


def start_server(base_path: Any, config: Optional[ServingConfig] = None) -> DevServer:
    """Start the development server in background threads (tests, notebooks).

    Args:
        base_path: str or Path. Folder holding ``NAME/VERSION`` SavedModels.
        config: ServingConfig or None. ``port=0`` gets any free port, for the REST API too
            unless ``rest_port`` is set to something other than its default.

    Returns:
        The started :class:`DevServer` (``server.address``, ``server.stop()``, or ``with``).

    Raises:
        ValueError: bad base path or model config.
        OSError: the address cannot be bound.

    Example:
        >>> with start_server(export_base, ServingConfig(port=0)) as server:
        ...     print(server.address, server.rest_url)
        127.0.0.1:... http://127.0.0.1:...
    """
    config = config or ServingConfig()
    if config.port == 0 and config.rest_port == ServingConfig().rest_port:
        config = config.replace(rest_port=0)  # free ports for both APIs (tests, notebooks)
    return DevServer(base_path, config).start()


def serve(base_path: Any, config: Optional[ServingConfig] = None) -> dict[str, Any]:
    """Run the development server until Ctrl-C or SIGTERM: what ``tfemotion serve`` calls.

    This is a development and test server; production serving is TensorFlow Serving
    (see ``serving/README.md``).

    Args:
        base_path: str or Path. Folder holding ``NAME/VERSION`` SavedModels (TF Serving's
            model base path, e.g. ``ExportConfig.base_path``).
        config: ServingConfig or None. host (default 127.0.0.1), port (default 8500), limits,
            poll_interval, model_config_file, session_config_file.

    Returns:
        ``{"address", "models"}`` as they were when the server stopped.

    Raises:
        ValueError: bad base path or model config.
        OSError: the address cannot be bound.

    Example:
        >>> serve("serving/models", ServingConfig(port=8500))  # runs until Ctrl-C: # doctest: +SKIP
    """
    server = start_server(base_path, config)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.stop).start())
    try:
        server.wait()
    except KeyboardInterrupt:
        logger.info("Stopping the development server")
    finally:
        server.stop()
    return {"address": server.address, "models": server.models()}
