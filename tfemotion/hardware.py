"""Where training runs: devices, the ``tf.distribute`` strategy, mixed precision and XLA.

``resolve_hardware`` turns ``FinetuneConfig.strategy`` (``auto``, ``default``, ``mirrored``,
``multi-worker``, ``tpu``), ``mixed_precision`` and ``xla`` into a ``Hardware`` record: the
strategy object, its kind, the number of replicas and whether this process is the chief (the one
that writes the run folder). It refuses, with a ``ValueError``, any option this machine cannot
honour: missing GPUs, TPU or cluster (``TF_CONFIG``), mixed precision without hardware support,
a TensorFlow build without XLA, or a global batch the replicas cannot share.
``precision_policy`` sets the Keras mixed-precision policy while a model is built;
``check_mixed_precision`` refuses a policy without hardware outside training (features);
``suggest_bfloat16`` says once that the CPU has bfloat16 units, and never picks them itself.

What the machine offers is one ``Devices`` record: the GPUs TensorFlow sees (their compute
capabilities), whether a TPU is attached, and the CPU's feature flags. ``detect_devices()`` reads
it; every function above takes one instead (``devices=None``: detect), so that a caller, or a test,
can describe another machine. ``TFEMOTION_CPU_FLAGS`` (space-separated flags; empty for none)
replaces the flags read from ``/proc/cpuinfo``: ``TFEMOTION_CPU_FLAGS=`` shows what a CPU without
bfloat16 units is told, ``TFEMOTION_CPU_FLAGS=avx512_bf16`` one with them (TensorFlow still
computes bfloat16 where the units are missing, only more slowly).

Example:
    >>> from tfemotion.config import FinetuneConfig
    >>> hardware = resolve_hardware(FinetuneConfig(strategy="default"))
    >>> hardware.kind, hardware.replicas, hardware.is_chief
    ('default', 1, True)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import tf_keras

from tfemotion.config import FinetuneConfig

logger = logging.getLogger(__name__)

# region Strategy


@dataclass(frozen=True)
class Hardware:
    """Where training runs: the tf.distribute strategy and what it implies."""

    strategy: Any
    kind: str  # "default", "mirrored", "multi-worker" or "tpu"
    replicas: int
    is_chief: bool


# The variable that replaces the CPU flags of /proc/cpuinfo (see the module docstring).
CPU_FLAGS_VARIABLE = "TFEMOTION_CPU_FLAGS"
# CPU flags of bfloat16 units: AVX512_BF16 (AMD Zen 4+, Intel Cooper Lake+) and AMX.
BFLOAT16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class Devices:
    """What a machine offers for training: read by ``detect_devices``, or described by hand.

    Example:
        >>> Devices(gpus=((8, 0), (8, 0)))  # two Ampere GPUs, no TPU, no CPU flags of note
        Devices(gpus=((8, 0), (8, 0)), tpu=False, cpu_flags=frozenset())
    """

    gpus: tuple[tuple[int, int], ...] = ()  # the compute capability of each GPU TensorFlow sees
    tpu: bool = False  # a TPU is attached (Colab TPU runtime, TPU VM)
    cpu_flags: frozenset[str] = frozenset()  # as /proc/cpuinfo lists them ("avx512_bf16", ...)


def detect_devices() -> Devices:
    """This machine's ``Devices``: TensorFlow's GPUs, a TPU's device files, the CPU's flags.

    Returns:
        A ``Devices`` record (``cpu_flags`` from ``cpu_flags()``, so ``TFEMOTION_CPU_FLAGS``
        applies).

    Example:
        >>> detect_devices().cpu_flags == cpu_flags()
        True
    """
    import tensorflow as tf

    gpus = tuple(
        tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))
        for gpu in tf.config.list_physical_devices("GPU"))
    return Devices(gpus, _tpu_attached(), cpu_flags())


def resolve_hardware(config: FinetuneConfig, devices: Optional[Devices] = None) -> Hardware:
    """Pick and create the ``tf.distribute`` strategy; refuse options the hardware cannot honour.

    ``strategy="auto"``: a TPU when one is attached (Colab, TPU VM), else
    ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a cluster, else
    ``MirroredStrategy`` with several GPUs, else the default one-device strategy.
    ``batch_size`` is the global batch: Keras splits each batch across the replicas, so the
    learning rate (which goes with the global batch) is used as given.

    Args:
        config: FinetuneConfig. Uses ``strategy``, ``mixed_precision``, ``xla``, ``batch_size``.
        devices: Devices or None. The machine to decide for (default: ``detect_devices()``).

    Returns:
        A ``Hardware`` record.

    Raises:
        ValueError: the strategy's devices or cluster are missing, mixed precision without
            hardware support, XLA unavailable, or a batch size the replicas cannot share.

    Example:
        >>> plain = Devices(cpu_flags=frozenset({"avx2"}))  # no GPU, no TPU, no bfloat16 units
        >>> resolve_hardware(FinetuneConfig(strategy="auto"), plain).kind
        'default'
        >>> resolve_hardware(FinetuneConfig(mixed_precision="mixed_bfloat16"), plain)
        Traceback (most recent call last):
        ValueError: mixed_bfloat16 needs bfloat16 hardware: ...
        >>> resolve_hardware(FinetuneConfig(mixed_precision="mixed_bfloat16"),
        ...                  Devices(cpu_flags=frozenset({"avx512_bf16"}))).kind
        'default'
    """
    import tensorflow as tf

    devices = detect_devices() if devices is None else devices
    kind = _auto_strategy(devices) if config.strategy == "auto" else config.strategy
    _check_precision(config.mixed_precision, kind, devices)
    if config.xla and not tf.test.is_built_with_xla():
        raise ValueError("xla=True needs a TensorFlow build with XLA; this one has none. "
                         "Received: xla=True")
    strategy = _make_strategy(kind, devices)
    replicas = int(strategy.num_replicas_in_sync)
    if config.batch_size % replicas:
        raise ValueError(
            f"batch_size is the global batch and must split evenly over the {replicas} replicas "
            f"of strategy {kind!r}. Received: batch_size={config.batch_size}"
        )
    return Hardware(strategy, kind, replicas, _is_chief(strategy, kind))


def _tf_config_workers() -> int:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
    except (json.JSONDecodeError, AttributeError):
        raise ValueError(
            f"TF_CONFIG must be JSON with a 'cluster'. Received: TF_CONFIG={raw!r}") from None
    return sum(len(cluster.get(role, [])) for role in ("chief", "worker"))


def _tpu_attached() -> bool:
    return bool(os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME")
                or Path("/dev/accel0").exists() or Path("/dev/vfio/0").exists())


def _auto_strategy(devices: Devices) -> str:
    if devices.tpu:
        return "tpu"
    if _tf_config_workers() > 1:
        return "multi-worker"
    return "mirrored" if len(devices.gpus) > 1 else "default"


def _make_strategy(kind: str, devices: Devices) -> Any:
    import tensorflow as tf

    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        if not devices.gpus:
            raise ValueError("strategy='mirrored' copies the model to every GPU and this machine "
                             "has none; use strategy='default'. Received: strategy='mirrored'")
        return tf.distribute.MirroredStrategy()
    if kind == "multi-worker":
        if _tf_config_workers() == 0:
            raise ValueError(
                "strategy='multi-worker' needs TF_CONFIG describing the cluster, e.g. "
                '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": '
                '"worker", "index": 0}}. Received: TF_CONFIG unset'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy(devices)


def _tpu_strategy(devices: Devices) -> Any:
    import tensorflow as tf

    if not devices.tpu:
        raise ValueError("strategy='tpu' needs a TPU (Colab TPU runtime or a TPU VM); none is "
                         "attached. Received: strategy='tpu'")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu="local" if Path("/dev/accel0").exists() else None)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ValueError(
            f"the TPU could not be reached ({error}). Received: strategy='tpu'") from None
    return tf.distribute.TPUStrategy(resolver)


# endregion
# region Precision and chief


def _check_precision(policy: str, kind: str, devices: Devices) -> None:
    if policy == "none":
        return
    if policy == "mixed_float16" and (kind == "tpu" or not devices.gpus):
        where = "a TPU (use mixed_bfloat16 there)" if kind == "tpu" else "no GPU"
        raise ValueError(f"mixed_float16 speeds up training on NVIDIA GPUs; this machine has "
                         f"{where}. Received: mixed_precision='mixed_float16'")
    if policy == "mixed_bfloat16" and not (kind == "tpu" or _bfloat16_hardware(devices)):
        raise ValueError(
            "mixed_bfloat16 needs bfloat16 hardware: a TPU, an NVIDIA GPU of compute capability "
            ">= 8.0, or a CPU with AVX512_BF16/AMX; none found. "
            "Received: mixed_precision='mixed_bfloat16'"
        )


def check_mixed_precision(policy: str, devices: Optional[Devices] = None) -> None:
    """Refuse a mixed-precision policy this machine has no units for (outside training too).

    Args:
        policy: str. ``"none"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.
        devices: Devices or None. The machine to check (default: ``detect_devices()``).

    Raises:
        ValueError: ``mixed_float16`` without an NVIDIA GPU, ``mixed_bfloat16`` without a TPU,
            an Ampere+ GPU or a CPU with bfloat16 units.

    Example:
        >>> check_mixed_precision("mixed_bfloat16", Devices(gpus=((8, 0),)))  # an Ampere GPU
        >>> check_mixed_precision("mixed_bfloat16", Devices(gpus=((7, 5),)))  # a Turing GPU
        Traceback (most recent call last):
        ValueError: mixed_bfloat16 needs bfloat16 hardware: ...
    """
    if policy == "none":
        return
    devices = detect_devices() if devices is None else devices
    _check_precision(policy, "tpu" if devices.tpu else "default", devices)


_SUGGESTED: set[str] = set()


def suggest_bfloat16(policy: str, flag: str = "mixed_precision='mixed_bfloat16'",
                     devices: Optional[Devices] = None) -> bool:
    """Say once per process that this CPU has bfloat16 units and which option uses them.

    Never switches anything on: the user decides (on some CPUs it is not faster; the
    benchmarks measure both). Returns whether the hint was given.

    Args:
        policy: str. The mixed-precision policy chosen (a hint only when it is ``"none"``).
        flag: str. How the option is written where the hint is read (a flag, a config field).
        devices: Devices or None. The machine (default: ``detect_devices()``); a GPU does the
            work where there is one, so no hint is given then.

    Example:
        >>> suggest_bfloat16("mixed_bfloat16")  # already chosen: nothing to say
        False
        >>> suggest_bfloat16("none", "--a-flag", Devices(cpu_flags=frozenset({"avx2"})))
        False
        >>> suggest_bfloat16("none", "--a-flag", Devices(cpu_flags=frozenset({"avx512_bf16"})))
        True
        >>> suggest_bfloat16("none", "--a-flag", Devices(cpu_flags=frozenset({"avx512_bf16"})))
        False
    """
    if policy != "none" or flag in _SUGGESTED:
        return False
    devices = detect_devices() if devices is None else devices
    if devices.gpus or not cpu_has_bfloat16(devices.cpu_flags):
        return False
    _SUGGESTED.add(flag)
    logger.info("This CPU has bfloat16 units: %s may run faster (accuracy within a few tenths "
                "of a point; the benchmarks in benchmarks/ measure both on this machine).", flag)
    return True


def cpu_flags(cpuinfo: Optional[str] = None) -> frozenset[str]:
    """The CPU's feature flags: ``TFEMOTION_CPU_FLAGS`` when set, else the ``flags`` lines of
    ``/proc/cpuinfo`` (none where it cannot be read).

    Args:
        cpuinfo: str or None. Text in ``/proc/cpuinfo``'s form to read instead (the variable
            is then ignored).

    Returns:
        A frozenset of flag names.

    Example:
        >>> sorted(cpu_flags("processor\\t: 0\\nflags\\t\\t: fpu avx2 avx512_bf16\\n"))
        ['avx2', 'avx512_bf16', 'fpu']
    """
    if cpuinfo is None:
        given = os.environ.get(CPU_FLAGS_VARIABLE)
        if given is not None:
            return frozenset(given.split())
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return frozenset()
    return frozenset(flag for line in cpuinfo.splitlines()
                     if line.split(":", 1)[0].strip() == "flags"
                     for flag in line.split(":", 1)[1].split())


def cpu_has_bfloat16(flags: Optional[Iterable[str]] = None) -> bool:
    """Whether a CPU with these flags (default: this one's, ``cpu_flags()``) has bfloat16 units
    (AVX512_BF16 or AMX).

    Example:
        >>> cpu_has_bfloat16({"avx2", "fma"}), cpu_has_bfloat16({"avx512f", "avx512_bf16"})
        (False, True)
    """
    return not BFLOAT16_CPU_FLAGS.isdisjoint(cpu_flags() if flags is None else flags)


def _bfloat16_hardware(devices: Devices) -> bool:
    if devices.gpus:  # the GPUs do the work: all of them need bfloat16 units
        return all(tuple(capability) >= (8, 0) for capability in devices.gpus)
    return cpu_has_bfloat16(devices.cpu_flags)


def _is_chief(strategy: Any, kind: str) -> bool:
    if kind != "multi-worker":
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    first_worker = task_type == "worker" and task_id == 0 and not has_chief
    return task_type in (None, "chief") or first_worker


@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Set the Keras mixed-precision policy while the model is built; restore it after.

    Args:
        name: str. ``"none"`` (leave the policy alone), ``"mixed_float16"`` or
            ``"mixed_bfloat16"`` (``FinetuneConfig.mixed_precision``).

    Returns:
        A context manager; the previous global policy is restored on exit.

    Example:
        >>> with precision_policy("mixed_bfloat16"):
        ...     print(tf_keras.mixed_precision.global_policy().name)
        mixed_bfloat16
        >>> tf_keras.mixed_precision.global_policy().name
        'float32'
    """
    if name == "none":
        yield
        return
    previous = tf_keras.mixed_precision.global_policy()
    tf_keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        tf_keras.mixed_precision.set_global_policy(previous)


# endregion
