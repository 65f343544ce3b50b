"""Setting up a Colab runtime (or any runtime with its own TensorFlow) for the notebooks.

Colab ships a GPU build of TensorFlow and Keras 3. ``install_requirements`` keeps that
TensorFlow when tfemotion supports its version, adds the ``tf-keras`` (and
``tensorflow-serving-api``) of the same minor version, and installs the rest of tfemotion's
requirements around it: it never swaps TensorFlow for a build that loses the GPU. Only when the
runtime's TensorFlow is missing or outside the supported range does it install the supported
one, with its CUDA libraries (``tensorflow[and-cuda]``) when the machine has a GPU.

``install_model_server`` installs TensorFlow Serving's ``tensorflow_model_server`` the way its
own Colab tutorial does (the ``.deb`` of a pinned release from its apt repository, ``dpkg -i``),
at the release that matches the TensorFlow that writes the exports.

The notebooks' first cell installs tfemotion without its dependencies, then calls
``install_requirements``. Nothing here runs at import.

Example:
    >>> plan_install("2.19.0", gpu=True).constraints
    ['tensorflow==2.19.0', 'tf-keras==2.19.*', 'tensorflow-serving-api==2.19.*', 'tensorboard==2.19.*']
    >>> plan_install("2.15.1", gpu=True).tensorflow
    'tensorflow[and-cuda]==2.21.*'
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable, Optional, Sequence

# The TensorFlow minor versions tfemotion supports (setup.cfg: tensorflow>=2.16,<2.22), and the
# one it installs where the runtime has none of them (constraints.txt).
SUPPORTED_TENSORFLOW = ((2, 16), (2, 21))
DEFAULT_TENSORFLOW = "2.21"
# TensorFlow Serving releases (tags of tensorflow/serving, newest patch per minor version) for
# the TensorFlow versions tfemotion supports. 2.20.0 is the newest release: exports written by a
# newer TensorFlow are served by it.
MODEL_SERVER_RELEASES = {(2, 16): "2.16.1", (2, 17): "2.17.1", (2, 18): "2.18.1",
                         (2, 19): "2.19.1", (2, 20): "2.20.0"}
NEWEST_MODEL_SERVER = MODEL_SERVER_RELEASES[max(MODEL_SERVER_RELEASES)]
MODEL_SERVER_DEB = ("http://storage.googleapis.com/tensorflow-serving-apt/pool/"
                    "tensorflow-model-server-universal-{version}/t/"
                    "tensorflow-model-server-universal/"
                    "tensorflow-model-server-universal_{version}_all.deb")
# Packages pinned to TensorFlow's minor version.
_TENSORFLOW_COMPANIONS = ("tf-keras", "tensorflow-serving-api", "tensorboard")

Runner = Callable[..., Any]


@dataclass(frozen=True)
class InstallPlan:
    """What ``install_requirements`` does: keep or install TensorFlow, and the pins around it.

    Attributes:
        tensorflow: str or None. The TensorFlow requirement to install; None keeps the runtime's.
        constraints: list of str. Pins for the pip run that installs the requirements.
        reason: str. One line for the user.
    """

    tensorflow: Optional[str]
    constraints: list[str] = field(default_factory=list)
    reason: str = ""


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def has_gpu() -> bool:
    """True when an NVIDIA GPU driver is present (without importing TensorFlow)."""
    return shutil.which("nvidia-smi") is not None


def installed_version(package: str) -> Optional[str]:
    """The installed version of ``package``, or None.

    Example:
        >>> installed_version("no-such-package-here") is None
        True
    """
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def plan_install(tensorflow_version: Optional[str], gpu: bool) -> InstallPlan:
    """Decide how to install tfemotion's requirements next to the runtime's TensorFlow.

    Args:
        tensorflow_version: str or None. The runtime's TensorFlow (``None``: not installed).
        gpu: bool. The machine has a GPU.

    Returns:
        An ``InstallPlan``.

    Example:
        >>> plan_install(None, gpu=False).tensorflow
        'tensorflow==2.21.*'
        >>> plan_install("2.21.0", gpu=True).tensorflow is None
        True
    """
    minor = _minor(tensorflow_version) if tensorflow_version else None
    low, high = SUPPORTED_TENSORFLOW
    if minor is not None and low <= minor <= high:
        series = f"{minor[0]}.{minor[1]}"
        return InstallPlan(
            tensorflow=None,
            constraints=[f"tensorflow=={tensorflow_version}",
                         *(f"{name}=={series}.*" for name in _TENSORFLOW_COMPANIONS)],
            reason=f"keeping the runtime's TensorFlow {tensorflow_version}"
                   + (" (GPU build)" if gpu else "") + f"; tf-keras {series} goes with it")
    requirement = ("tensorflow[and-cuda]" if gpu else "tensorflow") + f"=={DEFAULT_TENSORFLOW}.*"
    found = f"TensorFlow {tensorflow_version} is outside" if tensorflow_version else \
        "no TensorFlow is installed, within"
    return InstallPlan(
        tensorflow=requirement,
        constraints=[f"tensorflow=={DEFAULT_TENSORFLOW}.*",
                     *(f"{name}=={DEFAULT_TENSORFLOW}.*" for name in _TENSORFLOW_COMPANIONS)],
        reason=f"{found} the supported {low[0]}.{low[1]}-{high[0]}.{high[1]}: installing "
               f"{requirement}" + (" (with its CUDA libraries, for the GPU)" if gpu else ""))


def requirements(extras: Sequence[str] = (), package: str = "tfemotion") -> list[str]:
    """The installed ``package``'s requirements, with those of ``extras``, markers resolved.

    Example:
        >>> any(r.startswith("transformers") for r in requirements())
        True
    """
    try:
        from packaging.requirements import Requirement
    except ImportError:  # not installed yet: pip's own copy
        from pip._vendor.packaging.requirements import Requirement

    chosen = []
    for line in metadata.requires(package) or []:
        requirement = Requirement(line)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras) or \
                (marker.evaluate({"extra": ""}) and "extra" not in str(marker)):
            requirement.marker = None
            chosen.append(str(requirement))
    return chosen


def install_requirements(extras: Sequence[str] = (), *, run: Optional[Runner] = None,
                         tensorflow_version: Optional[str] = None,
                         gpu: Optional[bool] = None) -> InstallPlan:
    """Install tfemotion's requirements around the runtime's TensorFlow (see the module doc).

    Args:
        extras: sequence of str. tfemotion extras to include (``"umap"``).
        run: callable, optional. Runs a command list (default: ``subprocess.run``).
        tensorflow_version: str, optional. Default: the installed one.
        gpu: bool, optional. Default: whether ``nvidia-smi`` is present.

    Returns:
        The ``InstallPlan`` that was carried out.

    Example:
        >>> ran = []  # what would run: pip, the constraints, the requirements
        >>> plan = install_requirements(["umap"], run=lambda command, check: ran.append(command),
        ...                             tensorflow_version="2.21.0", gpu=False)
        tfemotion: ...
        >>> ran[0][1:4], "umap-learn>=0.5" in ran[0]
        (['-m', 'pip', 'install'], True)
    """
    version = tensorflow_version or installed_version("tensorflow")
    plan = plan_install(version, has_gpu() if gpu is None else gpu)
    print(f"tfemotion: {plan.reason}", flush=True)
    constraints = _write_constraints(plan.constraints)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "-c", constraints]
    if plan.tensorflow:
        command.append(plan.tensorflow)
    (run or subprocess.run)([*command, *requirements(extras)], check=True)
    importlib.invalidate_caches()
    return plan


def model_server_version(tensorflow_version: Optional[str] = None) -> str:
    """The TensorFlow Serving release that serves exports of ``tensorflow_version``.

    The newest release of the same minor version, or the newest release for a newer
    TensorFlow (``MODEL_SERVER_RELEASES``).

    Example:
        >>> model_server_version("2.16.2"), model_server_version("2.19.0")
        ('2.16.1', '2.19.1')
        >>> model_server_version("2.21.0")
        '2.20.0'
    """
    version = tensorflow_version or installed_version("tensorflow") or NEWEST_MODEL_SERVER
    minor = _minor(version)
    if minor in MODEL_SERVER_RELEASES:
        return MODEL_SERVER_RELEASES[minor]
    if minor is not None and minor < min(MODEL_SERVER_RELEASES):
        return MODEL_SERVER_RELEASES[min(MODEL_SERVER_RELEASES)]
    return NEWEST_MODEL_SERVER


def install_model_server(version: Optional[str] = None, *, run: Optional[Runner] = None,
                         folder: str = "/tmp") -> str:
    """Install ``tensorflow_model_server`` from TensorFlow Serving's apt repository (root only).

    As TensorFlow Serving's Colab tutorial does: download the pinned release's ``.deb`` and
    install it with ``dpkg -i``. The binary runs on the CPU (the GPU server is the
    ``tensorflow/serving:VERSION-gpu`` image; see ``serving/``).

    Args:
        version: str, optional. TensorFlow Serving release (default: ``model_server_version()``).
        run: callable, optional. Runs a command list (default: ``subprocess.run``).
        folder: str. Where the ``.deb`` is downloaded.

    Returns:
        The version installed.

    Example:
        >>> ran = []  # on Colab: run=None, and the commands below download and install
        >>> install_model_server("2.20.0", run=lambda command, check: ran.append(command[0]))
        tfemotion: installing TensorFlow Serving 2.20.0 (http://storage.googleapis.com/...)
        '2.20.0'
        >>> ran
        ['wget', 'dpkg']
    """
    version = version or model_server_version()
    url = MODEL_SERVER_DEB.format(version=version)
    deb = f"{folder}/{url.rsplit('/', 1)[1]}"
    print(f"tfemotion: installing TensorFlow Serving {version} ({url})", flush=True)
    run = run or subprocess.run
    run(["wget", "--quiet", "-O", deb, url], check=True)
    run(["dpkg", "-i", deb], check=True)
    return version


def choose_server(requested: str = "auto") -> str:
    """The server notebook 03 starts: TensorFlow Serving on Colab or where it is installed,
    else the development server (``tfemotion serve``).

    Args:
        requested: str. ``"auto"``, ``"tensorflow_model_server"`` or ``"tfemotion"``.

    Raises:
        ValueError: another value.

    Example:
        >>> choose_server("tfemotion")
        'tfemotion'
    """
    choices = ("auto", "tensorflow_model_server", "tfemotion")
    if requested not in choices:
        raise ValueError(f"SERVER must be one of {choices}. Received: SERVER={requested!r}")
    if requested != "auto":
        return requested
    if in_colab() or shutil.which("tensorflow_model_server"):
        return "tensorflow_model_server"
    return "tfemotion"


def _minor(version: str) -> Optional[tuple[int, int]]:
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def _write_constraints(lines: list[str]) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix="-constraints.txt", delete=False) as handle:
        handle.write("\n".join(lines) + "\n")
    return handle.name
