"""The model store of the development server: which versions to serve, loaded as TF Serving does.

Like TensorFlow Serving it serves ``BASE/NAME/VERSION`` SavedModels (the highest version of
each model by default, or the version policies and labels of a ``models.config``), looks for new
versions at each ``refresh`` and swaps them in without a restart, and replays
``assets.extra/tf_serving_warmup_requests`` before a version goes live. A version is loaded
through TensorFlow Serving's own path (:class:`tfemotion.export.servable.SessionServable`: a session,
SignatureDef tensor names), so a model served here is the model TensorFlow Serving would run.
Folders whose name is not an integer (``.tmp-3``, ``3.partial``) are ignored, and a new folder
is loaded only once its files have stopped changing between two refreshes.

Example:
    >>> from tfemotion.config import ServingConfig
    >>> store = ModelStore(Path(export_base), ServingConfig())  # BASE/NAME/VERSION under it
    >>> store.refresh(settle=False)
    >>> store.models()
    {'emotion': {'versions': {1: 'AVAILABLE'}, 'labels': {}}}
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from tfemotion.config import ServingConfig
from tfemotion.export.servable import (ServableError, SessionServable, read_session_config,
                                replay_warmup)
from tfemotion.export.signatures import is_version_folder

logger = logging.getLogger(__name__)


@dataclass
class Policy:
    """Which versions of one model to serve, and its version labels."""

    name: str
    folder: Path
    kind: str = "latest"  # latest | all | specific
    num_versions: int = 1
    versions: tuple = ()
    labels: dict = field(default_factory=dict)

    def select(self, ready: set[int]) -> set[int]:
        """The versions to serve among those ``ready`` on disk.

        Example:
            >>> Policy("m", Path("m")).select({1, 2, 3}), Policy("m", Path("m"), "all").select({1, 2})
            ({3}, {1, 2})
        """
        if self.kind == "all":
            return set(ready)
        if self.kind == "specific":
            return ready & set(self.versions)
        return set(sorted(ready)[-self.num_versions:])


def read_model_config(path: Path, base_path: Optional[Path]) -> dict[str, Policy]:
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
        policy = Policy(model.name, folder, labels=dict(model.version_labels))
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


# A function that runs a signature: (key, inputs, output keys) -> outputs. Direct session runs
# by default; server-side batching puts a scheduler in between (tfemotion.serving.batching).
Runner = Callable[[str, dict, Optional[list]], dict]


@dataclass
class LoadedVersion:
    """One loaded version of one model, answering requests through its runner."""

    name: str
    version: int
    path: Path
    servable: SessionServable
    runner: Optional[Runner] = None

    @property
    def signature_defs(self) -> dict:
        """The SignatureDefs of the version, as the server reports them."""
        return self.servable.signature_defs

    def signature(self, key: str) -> Any:
        """The SignatureDef ``key``; FAILED_PRECONDITION naming the model when absent."""
        try:
            return self.servable.signature(key)
        except ServableError as error:
            raise ServableError(error.code, f"{error.message} (model '{self.name}' version "
                                f"{self.version})") from None

    def run(self, key: str, inputs: dict[str, np.ndarray],
            output_keys: Optional[list] = None) -> dict[str, np.ndarray]:
        """Run signature ``key`` (through the batching scheduler when there is one)."""
        return (self.runner or self.servable.run)(key, inputs, output_keys)


@dataclass
class VersionState:
    """A version's state as GetModelStatus reports it, with the error of a failed load."""

    state: str  # LOADING | AVAILABLE | END
    error_code: str = "OK"
    error_message: str = ""


class ModelStore:
    """The versions on disk, the versions loaded, their states; refreshed by polling."""

    def __init__(self, base_path: Optional[Path], config: ServingConfig,
                 make_runner: Optional[Callable[[LoadedVersion], Runner]] = None):
        self.base_path, self.config = base_path, config
        self.make_runner = make_runner  # e.g. a batching scheduler per loaded version
        self.config_file = Path(config.model_config_file) if config.model_config_file else None
        self._lock = threading.RLock()  # guards the dicts below
        self._refresh_lock = threading.Lock()  # one refresh at a time
        self.servables: dict[str, dict[int, LoadedVersion]] = {}
        self.states: dict[str, dict[int, VersionState]] = {}
        self.policies: dict[str, Policy] = {}
        self._pending: dict[tuple[str, int], tuple] = {}
        self._failed: dict[tuple[str, int], tuple] = {}
        self._config_stamp: Optional[int] = None
        if self.config_file is not None:
            self._reload_config(strict=True)
        self.session_config = (read_session_config(config.session_config_file)
                               if config.session_config_file else None)

    def _reload_config(self, strict: bool = False) -> None:
        try:
            stamp = hash(self.config_file.read_bytes())
            if stamp == self._config_stamp:
                return
            policies = read_model_config(self.config_file, self.base_path)
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

    def _current_policies(self) -> dict[str, Policy]:
        if self.config_file is not None:
            self._reload_config()
            return dict(self.policies)
        names = {self.config.name}
        if self.base_path.is_dir():
            names |= {d.name for d in self.base_path.iterdir() if d.is_dir()
                      and not d.name.startswith((".", "_"))
                      and any(is_version_folder(v.name) for v in d.iterdir() if v.is_dir())}
        with self._lock:
            for name in names:
                self.policies.setdefault(name, Policy(name, self.base_path / name))
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

    def _refresh_model(self, policy: Policy, settle: bool) -> None:
        name, loaded = policy.name, set(self.servables.get(policy.name, {}))
        ready = set()
        folders = policy.folder.iterdir() if policy.folder.is_dir() else []
        for folder in folders:
            if not (folder.is_dir() and is_version_folder(folder.name)):
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
            self.states.setdefault(name, {})[version] = VersionState("LOADING")
        logger.info("Loading %s version %d from %s", name, version, folder)
        try:
            servable = SessionServable(folder, self.session_config)  # TF Serving's loading path
            loaded = LoadedVersion(name, version, folder, servable)
            if self.make_runner is not None:
                loaded.runner = self.make_runner(loaded)
            # Through the batching scheduler when there is one, as TF Serving warms up through
            # its batching session; a failing record fails the load.
            count = replay_warmup(loaded)
        except Exception as error:  # any failure: report it in the status, keep serving
            code = error.code if isinstance(error, ServableError) else "UNKNOWN"
            message = f"Loading {folder} failed: {type(error).__name__}: {error}"
            logger.error(message)
            self._failed[(name, version)] = _snapshot(folder)
            with self._lock:
                self.states[name][version] = VersionState("END", code, message)
            return False
        with self._lock:
            self.servables.setdefault(name, {})[version] = loaded
            self.states[name][version] = VersionState("AVAILABLE")
        logger.info("Serving %s version %d (%d warm-up requests)", name, version, count)
        return True

    def _unload(self, name: str, versions: set[int]) -> None:
        with self._lock:
            for version in versions:
                loaded = self.servables[name].pop(version, None)
                close = getattr(loaded.runner, "close", None) if loaded else None
                if close is not None:
                    close()  # a batching scheduler: finish what is queued, take no more
                self.states[name][version] = VersionState("END")
                logger.info("Unloaded %s version %d", name, version)

    def models(self) -> dict[str, dict[str, Any]]:
        """Return ``{name: {"versions": {version: state}, "labels": {label: version}}}``."""
        with self._lock:
            return {name: {"versions": {v: s.state for v, s in
                                        sorted(self.states.get(name, {}).items())},
                           "labels": dict(policy.labels)}
                    for name, policy in sorted(self.policies.items())}

    # region lookups: TF Serving's ServerCore::ServableRequestFromModelSpec and
    # GetModelVersionForLabel, BasicManager's "Servable not found" and GetModelStatusImpl
    def resolve(self, spec: Any) -> LoadedVersion:
        """The loaded servable a ModelSpec asks for (latest when no version or label).

        Raises:
            ServableError: INVALID_ARGUMENT ``ModelSpec has no name specified.`` or
                ``Unrecognized servable version label: L``; NOT_FOUND ``Servable not found for
                request: Latest(NAME)`` or ``Specific(NAME, N)``, then what is loaded.
        """
        if not spec.name:
            raise ServableError("INVALID_ARGUMENT", "ModelSpec has no name specified.")
        with self._lock:
            policy = self.policies.get(spec.name)
            labels = policy.labels if policy else {}
            if spec.version_label:
                if spec.version_label not in labels:
                    raise ServableError("INVALID_ARGUMENT", "Unrecognized servable version "
                                        f"label: {spec.version_label}")
                version: Optional[int] = labels[spec.version_label]
            else:
                version = spec.version.value if spec.HasField("version") else None
            loaded = self.servables.get(spec.name, {})
            if version in loaded or (version is None and loaded):
                return loaded[max(loaded) if version is None else version]
        request = f"Latest({spec.name})" if version is None else f"Specific({spec.name}, {version})"
        served = (f"; model '{spec.name}' has versions {sorted(loaded)} loaded" if loaded else
                  f"; loaded models: {sorted(self.servables)}")
        raise ServableError("NOT_FOUND", f"Servable not found for request: {request}{served}")

    def version_states(self, spec: Any) -> list[tuple[int, VersionState]]:
        """(version, state) pairs for GetModelStatus: of the spec's version, else of every
        version (a version label is not read, as TF Serving's ``GetModelStatusImpl``)."""
        with self._lock:
            states = sorted(self.states.get(spec.name, {}).items())
        if spec.HasField("version"):
            version = spec.version.value
            states = [(v, s) for v, s in states if v == version]
            if not states:
                raise ServableError("NOT_FOUND", f"Could not find version {version} of model "
                                    f"{spec.name}")
        elif not states:
            raise ServableError("NOT_FOUND", f"Could not find any versions of model {spec.name}")
        return states
