"""A development server that speaks TensorFlow Serving's gRPC API. For development and tests only.

Production serving is TensorFlow Serving (``serving/`` has the Docker, Kubernetes and config
files). TensorFlow Serving is a C++ binary that cannot be pip-installed; this server lets you
try an export, write clients and run tests with nothing but the Python packages. It implements,
with the official ``tensorflow-serving-api`` stubs:

* PredictionService ``Predict``, ``Classify`` and ``GetModelMetadata``;
* ModelService ``GetModelStatus``.

Like TensorFlow Serving it serves ``BASE/NAME/VERSION`` SavedModels (the highest version of
each model by default, or the version policies and labels of a ``models.config``), looks for new
versions every ``poll_interval`` seconds and swaps them in without a restart, and replays
``assets.extra/tf_serving_warmup_requests`` before a version goes live. Folders whose name is not
an integer (``.tmp-3``, ``3.partial``) are ignored, and a new folder is loaded only once its
files have stopped changing between two polls. Unlike TensorFlow Serving it binds to 127.0.0.1
unless told otherwise, caps the request size, the batch size and the text length
(:class:`~tfemotion.config.ServingConfig`), and has no server-side batching, REST API or metrics.
Every bad request gets a gRPC status (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION...) with a
message, and the server keeps serving.

Example:
    >>> from tfemotion.config import ServingConfig
    >>> from tfemotion.serving import ServingClient
    >>> with start_server("serving/models", ServingConfig(port=0)) as server:  # doctest: +SKIP
    ...     ServingClient(server.address).predict(["i am so happy"])
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from tfemotion._devserver_requests import _RequestError, _code_name, _run_classify, _run_predict
from tfemotion.config import ServingConfig
from tfemotion.serving import _address, _apis

logger = logging.getLogger(__name__)

_VERSION_DIR = re.compile(r"^[0-9]+$")
_WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
_MAX_WARMUP_RECORDS = 1000  # TF Serving refuses warm-up files with more records


# region models on disk
@dataclass
class _Policy:
    """Which versions of one model to serve, and its version labels."""

    name: str
    folder: Path
    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple = ()
    labels: dict = field(default_factory=dict)

    def select(self, ready: set[int]) -> set[int]:
        if self.kind == "all":
            return set(ready)
        if self.kind == "specific":
            return ready & set(self.versions)
        return set(sorted(ready)[-self.num_versions:])


def _read_model_config(path: Path, base_path: Optional[Path]) -> dict[str, _Policy]:
    """Parse a TF Serving models.config (text ModelServerConfig) into policies by model name.

    With ``base_path`` each model lives in ``base_path/NAME`` (the file's base_path is the
    container's path); without it, in the file's base_path.
    """
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    try:
        config = text_format.Parse(Path(path).read_text(encoding="utf-8"),
                                   model_server_config_pb2.ModelServerConfig())
    except (OSError, text_format.ParseError) as error:
        raise ValueError(f"Cannot read the model config (a text ModelServerConfig): {error}. "
                         f"Received: model_config_file={str(path)!r}") from error
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError("The model config must hold a model_config_list. "
                         f"Received: model_config_file={str(path)!r}")
    policies = {}
    for model in config.model_config_list.config:
        folder = base_path / model.name if base_path is not None else Path(model.base_path)
        policy = _Policy(model.name, folder, labels=dict(model.version_labels))
        which = model.model_version_policy.WhichOneof("policy_choice")
        if which == "specific":
            policy.kind, policy.versions = "specific", tuple(
                model.model_version_policy.specific.versions)
        elif which == "all":
            policy.kind = "all"
        elif which == "latest":
            policy.num_versions = model.model_version_policy.latest.num_versions or 1
        policies[model.name] = policy
    return policies


def _snapshot(folder: Path) -> Optional[tuple]:
    """Sizes and mtimes of a version folder's files; None when it is not a SavedModel (yet)."""
    if not any((folder / name).is_file() for name in ("saved_model.pb", "saved_model.pbtxt")):
        return None
    try:
        return tuple(sorted((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
                            for p in folder.rglob("*") if p.is_file()))
    except OSError:  # a file vanished while we looked: still being written
        return None


def _signature_defs(folder: Path) -> dict[str, Any]:
    """The SignatureDefs of the ``serve`` MetaGraph, as TF Serving reports them."""
    from google.protobuf import text_format
    from tensorflow.core.protobuf import saved_model_pb2

    model = saved_model_pb2.SavedModel()
    if (folder / "saved_model.pb").is_file():
        model.ParseFromString((folder / "saved_model.pb").read_bytes())
    else:
        text_format.Parse((folder / "saved_model.pbtxt").read_text(), model)
    for meta_graph in model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return dict(meta_graph.signature_def)
    raise ValueError(f"No MetaGraph tagged 'serve' in {folder}")


@dataclass
class _Servable:
    """One loaded version of one model."""

    name: str
    version: int
    path: Path
    module: Any
    signature_defs: dict

    def signature(self, key: str) -> Any:
        if key not in self.signature_defs or key.startswith("__"):
            keys = sorted(k for k in self.signature_defs if not k.startswith("__"))
            raise _RequestError("FAILED_PRECONDITION", f"Serving signature key \"{key}\" not found"
                                f" in model '{self.name}' version {self.version}; it has {keys}")
        return self.signature_defs[key]

    def run(self, key: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        tf = _apis().tf
        try:
            outputs = self.module.signatures[key](**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.OpError as error:
            raise _RequestError(_code_name(error.error_code), error.message) from None
        except (TypeError, ValueError) as error:
            raise _RequestError("INVALID_ARGUMENT", str(error)) from None
        return {k: v.numpy() for k, v in outputs.items()}


@dataclass
class _State:
    state: str  # LOADING | AVAILABLE | END
    error_code: str = "OK"
    error_message: str = ""
# endregion


class _ModelStore:
    """The versions on disk, the versions loaded, their states; refreshed by polling."""

    def __init__(self, base_path: Optional[Path], config: ServingConfig):
        self.base_path, self.config = base_path, config
        self.config_file = Path(config.model_config_file) if config.model_config_file else None
        self._lock = threading.RLock()  # guards the dicts below
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self.servables: dict[str, dict[int, _Servable]] = {}
        self.states: dict[str, dict[int, _State]] = {}
        self.policies: dict[str, _Policy] = {}
        self._pending: dict[tuple[str, int], tuple] = {}
        self._failed: dict[tuple[str, int], tuple] = {}
        self._config_stamp: Optional[int] = None
        if self.config_file is not None:
            self._reload_config(strict=True)

    def _reload_config(self, strict: bool = False) -> None:
        try:
            stamp = hash(self.config_file.read_bytes())
            if stamp == self._config_stamp:
                return
            policies = _read_model_config(self.config_file, self.base_path)
        except (OSError, ValueError) as error:
            if strict and isinstance(error, ValueError):
                raise
            if strict:
                raise ValueError(f"Cannot read the model config: {error}. Received: "
                                 f"model_config_file={str(self.config_file)!r}") from error
            logger.error("Keeping the previous model config: %s", error)
            return
        with self._lock:
            self.policies, self._config_stamp = policies, stamp
        logger.info("Model config %s: %s", self.config_file,
                    {p.name: p.labels for p in policies.values()})

    def _current_policies(self) -> dict[str, _Policy]:
        if self.config_file is not None:
            self._reload_config()
            return dict(self.policies)
        names = {self.config.name}
        if self.base_path.is_dir():
            names |= {d.name for d in self.base_path.iterdir() if d.is_dir()
                      and not d.name.startswith((".", "_"))
                      and any(_VERSION_DIR.match(v.name) for v in d.iterdir() if v.is_dir())}
        with self._lock:
            for name in names:
                self.policies.setdefault(name, _Policy(name, self.base_path / name))
            return dict(self.policies)

    def refresh(self, settle: bool = True) -> None:
        """Load the versions the policies want, unload the others (after the new ones loaded).

        Args:
            settle: bool. Load a new folder only when its files are unchanged since the last
                refresh (False at start-up).
        """
        with self._refresh_lock:
            policies = self._current_policies()
            for name in set(self.servables) - set(policies):
                self._unload(name, set(self.servables[name]))
            for name, policy in policies.items():
                self._refresh_model(policy, settle)

    def _refresh_model(self, policy: _Policy, settle: bool) -> None:
        name, loaded = policy.name, set(self.servables.get(policy.name, {}))
        ready = set()
        folders = policy.folder.iterdir() if policy.folder.is_dir() else []
        for folder in folders:
            if not (folder.is_dir() and _VERSION_DIR.match(folder.name)):
                continue  # temporary, hidden or foreign folder
            version = int(folder.name)
            if version in loaded:
                ready.add(version)
                continue
            snap = _snapshot(folder)
            if snap is None or self._failed.get((name, version)) == snap:
                continue
            if settle and self._pending.get((name, version)) != snap:
                self._pending[(name, version)] = snap  # look again at the next poll
                continue
            self._pending.pop((name, version), None)
            ready.add(version)
        wanted = policy.select(ready)
        while wanted - set(self.servables.get(name, {})):  # a failed load: fall back, try again
            for version in sorted(wanted - set(self.servables.get(name, {}))):
                if not self._load(name, version, policy.folder / str(version)):
                    ready.discard(version)
            wanted = policy.select(ready)
        self._unload(name, loaded - wanted)

    def _load(self, name: str, version: int, folder: Path) -> bool:
        with self._lock:
            self.states.setdefault(name, {})[version] = _State("LOADING")
        logger.info("Loading %s version %d from %s", name, version, folder)
        try:
            servable = _Servable(name, version, folder, _apis().tf.saved_model.load(str(folder)),
                                 _signature_defs(folder))
            count = _warm_up(servable, self.config)
        except Exception as error:  # any failure: report it in the status, keep serving
            code = error.code if isinstance(error, _RequestError) else "UNKNOWN"
            message = f"Loading {folder} failed: {type(error).__name__}: {error}"
            logger.error(message)
            self._failed[(name, version)] = _snapshot(folder)
            with self._lock:
                self.states[name][version] = _State("END", code, message)
            return False
        with self._lock:
            self.servables.setdefault(name, {})[version] = servable
            self.states[name][version] = _State("AVAILABLE")
        logger.info("Serving %s version %d (%d warm-up requests)", name, version, count)
        return True

    def _unload(self, name: str, versions: set[int]) -> None:
        with self._lock:
            for version in versions:
                self.servables[name].pop(version, None)
                self.states[name][version] = _State("END")
                logger.info("Unloaded %s version %d", name, version)

    # region lookups
    def _policy(self, name: str) -> _Policy:
        if not name:
            raise _RequestError("INVALID_ARGUMENT", "ModelSpec.name is empty; name the model "
                                "(e.g. 'emotion')")
        with self._lock:
            if name not in self.policies:
                raise _RequestError("NOT_FOUND", f"Servable not found for request: model "
                                    f"'{name}' is not served; served: {sorted(self.policies)}")
            return self.policies[name]

    def _version(self, spec: Any) -> Optional[int]:
        policy = self._policy(spec.name)
        if spec.version_label:
            if spec.version_label not in policy.labels:
                raise _RequestError("INVALID_ARGUMENT", f"Unrecognized servable version label: "
                                    f"'{spec.version_label}'; labels of '{spec.name}': "
                                    f"{policy.labels or 'none'}")
            return policy.labels[spec.version_label]
        return spec.version.value if spec.HasField("version") else None

    def resolve(self, spec: Any) -> _Servable:
        """The loaded servable a ModelSpec asks for (latest when no version or label)."""
        version = self._version(spec)
        with self._lock:
            loaded = self.servables.get(spec.name, {})
            if version is None and loaded:
                version = max(loaded)
            if version not in loaded:
                wanted = f"version {version}" if version is not None else "any version"
                raise _RequestError("NOT_FOUND", f"Servable not found for request: {wanted} of "
                                    f"model '{spec.name}' is not loaded; loaded: {sorted(loaded)}")
            return loaded[version]

    def version_states(self, spec: Any) -> list[tuple[int, _State]]:
        """(version, state) pairs for GetModelStatus."""
        version = self._version(spec)
        with self._lock:
            states = sorted(self.states.get(spec.name, {}).items())
        if version is not None:
            states = [(v, s) for v, s in states if v == version]
        if not states:
            what = f"version {version} of model" if version is not None else "any versions of model"
            raise _RequestError("NOT_FOUND", f"Could not find {what} '{spec.name}'")
        return states
    # endregion


# region warm-up
def _warm_up(servable: _Servable, config: ServingConfig) -> int:
    """Replay the version's warm-up requests, as TF Serving does; a failure fails the load."""
    path = servable.path / _WARMUP_FILE
    if not path.is_file():
        return 0
    from tensorflow_serving.apis import prediction_log_pb2

    records = list(_apis().tf.data.TFRecordDataset(str(path)).take(_MAX_WARMUP_RECORDS + 1)
                   .as_numpy_iterator())
    if len(records) > _MAX_WARMUP_RECORDS:
        raise ValueError(f"{path} has more than {_MAX_WARMUP_RECORDS} records")
    for i, record in enumerate(records):
        log = prediction_log_pb2.PredictionLog.FromString(record)
        kind = log.WhichOneof("log_type")
        try:
            if kind == "predict_log":
                _run_predict(servable, log.predict_log.request, config)
            elif kind == "classify_log":
                _run_classify(servable, log.classify_log.request, config)
            else:
                logger.warning("Warm-up record %d (%s) skipped: not replayed here", i, kind)
        except _RequestError as error:
            raise _RequestError(error.code, f"warm-up record {i} ({kind}): {error.message}") \
                from None
    return len(records)
# endregion


class _Servicers:
    """Both gRPC services over one model store; each failure becomes a gRPC status."""

    def __init__(self, store: _ModelStore, config: ServingConfig):
        self.store, self.config = store, config

    def _answer(self, context: Any, method: Any, request: Any) -> Any:
        grpc = _apis().grpc
        try:
            return method(request)
        except _RequestError as error:
            context.abort(getattr(grpc.StatusCode, error.code), error.message)
        except Exception as error:  # keep serving whatever happens
            logger.exception("Request failed")
            context.abort(grpc.StatusCode.INTERNAL, f"{type(error).__name__}: {error}")

    def Predict(self, request: Any, context: Any) -> Any:
        return self._answer(context, lambda r: _run_predict(
            self.store.resolve(r.model_spec), r, self.config), request)

    def Classify(self, request: Any, context: Any) -> Any:
        return self._answer(context, lambda r: _run_classify(
            self.store.resolve(r.model_spec), r, self.config), request)

    def GetModelMetadata(self, request: Any, context: Any) -> Any:
        return self._answer(context, self._metadata, request)

    def GetModelStatus(self, request: Any, context: Any) -> Any:
        return self._answer(context, self._status, request)

    def _metadata(self, request: Any) -> Any:
        api = _apis()
        fields = list(request.metadata_field)
        if fields != ["signature_def"]:
            raise _RequestError("INVALID_ARGUMENT", f"metadata_field must be ['signature_def']; "
                                f"got {fields}")
        servable = self.store.resolve(request.model_spec)
        response = api.metadata.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signature_map = api.metadata.SignatureDefMap()
        for key, signature in servable.signature_defs.items():
            signature_map.signature_def[key].CopyFrom(signature)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def _status(self, request: Any) -> Any:
        api = _apis().status
        response = api.GetModelStatusResponse()
        for version, state in self.store.version_states(request.model_spec):
            item = response.model_version_status.add(version=version)
            item.state = api.ModelVersionStatus.State.Value(state.state)
            codes = item.status.DESCRIPTOR.fields_by_name["error_code"].enum_type.values_by_name
            item.status.error_code = codes[state.error_code].number
            item.status.error_message = state.error_message
        return response


def _servicer(store: _ModelStore, config: ServingConfig) -> _Servicers:
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
        config: ServingConfig or None. host, port (0: any free port), name, limits, workers,
            poll_interval, model_config_file.

    Raises:
        ValueError: the base path is not a folder, or the model config cannot be read.

    Example:
        >>> server = DevServer("serving/models", ServingConfig(port=0)).start()  # doctest: +SKIP
        >>> server.address  # doctest: +SKIP
        '127.0.0.1:40123'
        >>> server.stop()  # doctest: +SKIP
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
        self.store = _ModelStore(base, self.config)
        self.port: Optional[int] = None
        self._server: Any = None
        self._stop = threading.Event()
        self._poller: Optional[threading.Thread] = None

    @property
    def address(self) -> str:
        """``HOST:PORT`` that clients should use."""
        return _address(self.config.host, self.port)

    def start(self) -> "DevServer":
        """Bind, load the models, and serve from background threads; return self."""
        api = _apis()
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        servicers = _servicer(self.store, self.config)
        server = api.grpc.server(
            futures.ThreadPoolExecutor(self.config.workers, thread_name_prefix="devserver"),
            options=[("grpc.max_receive_message_length", self.config.max_request_bytes),
                     ("grpc.max_send_message_length", -1),
                     ("grpc.so_reuseport", 0)])  # fail loudly if the port is taken
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(servicers, server)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(servicers, server)
        wanted = _address(self.config.host, self.config.port)
        try:
            port = server.add_insecure_port(wanted)
        except RuntimeError:
            port = 0
        if not port:  # before loading any model: a taken port fails at once
            raise OSError(f"Cannot bind {wanted} (in use, or not an address of this machine); "
                          f"choose another with --port. Received: host={self.config.host!r}, "
                          f"port={self.config.port!r}")
        self.store.refresh(settle=False)
        server.start()
        self._server, self.port = server, port
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
        logger.info("Development server on %s serving %s (Ctrl-C stops it)", self.address,
                    served)
        return self

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
        with self.store._lock:
            return {name: {"versions": {v: s.state for v, s in
                                        sorted(self.store.states.get(name, {}).items())},
                           "labels": dict(policy.labels)}
                    for name, policy in sorted(self.store.policies.items())}

    def wait(self) -> None:
        """Block until the server stops."""
        self._server.wait_for_termination()

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds) and stop polling."""
        self._stop.set()
        if self._server is not None:
            self._server.stop(grace).wait()
        if self._poller is not None and self._poller is not threading.current_thread():
            self._poller.join(timeout=5)

    def __enter__(self) -> "DevServer":
        return self if self._server is not None else self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_server(base_path: Any, config: Optional[ServingConfig] = None) -> DevServer:
    """Start the development server in background threads (tests, notebooks).

    Args:
        base_path: str or Path. Folder holding ``NAME/VERSION`` SavedModels.
        config: ServingConfig or None. Use ``port=0`` to get any free port.

    Returns:
        The started :class:`DevServer` (``server.address``, ``server.stop()``, or ``with``).

    Raises:
        ValueError: bad base path or model config.
        OSError: the address cannot be bound.

    Example:
        >>> with start_server("serving/models", ServingConfig(port=0)) as server:  # doctest: +SKIP
        ...     print(server.address)
        127.0.0.1:40123
    """
    return DevServer(base_path, config).start()


def serve(base_path: Any, config: Optional[ServingConfig] = None) -> dict[str, Any]:
    """Run the development server until Ctrl-C or SIGTERM: what ``tfemotion serve`` calls.

    This is a development and test server; production serving is TensorFlow Serving
    (see ``serving/README.md``).

    Args:
        base_path: str or Path. Folder holding ``NAME/VERSION`` SavedModels (TF Serving's
            model base path, e.g. ``ExportConfig.base_path``).
        config: ServingConfig or None. host (default 127.0.0.1), port (default 8500), limits,
            poll_interval, model_config_file.

    Returns:
        ``{"address", "models"}`` as they were when the server stopped.

    Raises:
        ValueError: bad base path or model config.
        OSError: the address cannot be bound.

    Example:
        >>> serve("serving/models", ServingConfig(port=8500))  # doctest: +SKIP
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
