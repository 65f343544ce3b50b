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
from typing import Any, Iterator

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


def resolve_hardware(config: FinetuneConfig) -> Hardware:
    """Pick and create the ``tf.distribute`` strategy; refuse options the hardware cannot honour.

    ``strategy="auto"``: a TPU when one is attached (Colab, TPU VM), else
    ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a cluster, else
    ``MirroredStrategy`` with several GPUs, else the default one-device strategy.
    ``batch_size`` is the global batch: Keras splits each batch across the replicas, so the
    learning rate (which goes with the global batch) is used as given.

    Args:
        config: FinetuneConfig. Uses ``strategy``, ``mixed_precision``, ``xla``, ``batch_size``.

    Returns:
        A ``Hardware`` record.

    Raises:
        ValueError: the strategy's devices or cluster are missing, mixed precision without
            hardware support, XLA unavailable, or a batch size the replicas cannot share.

    Example:
        >>> resolve_hardware(FinetuneConfig(strategy="auto")).kind  # a machine without GPUs
        'default'
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    kind = _auto_strategy(gpus) if config.strategy == "auto" else config.strategy
    _check_precision(config.mixed_precision, kind, gpus)
    if config.xla and not tf.test.is_built_with_xla():
        raise ValueError("xla=True needs a TensorFlow build with XLA; this one has none. "
                         "Received: xla=True")
    strategy = _make_strategy(kind, gpus)
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


def _auto_strategy(gpus: list) -> str:
    if _tpu_attached():
        return "tpu"
    if _tf_config_workers() > 1:
        return "multi-worker"
    return "mirrored" if len(gpus) > 1 else "default"


def _make_strategy(kind: str, gpus: list) -> Any:
    import tensorflow as tf

    if kind == "default":
        return tf.distribute.get_strategy()
    if kind == "mirrored":
        if not gpus:
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
    return _tpu_strategy()


def _tpu_strategy() -> Any:
    import tensorflow as tf

    if not _tpu_attached():
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


def _check_precision(policy: str, kind: str, gpus: list) -> None:
    if policy == "none":
        return
    if policy == "mixed_float16" and (kind == "tpu" or not gpus):
        where = "a TPU (use mixed_bfloat16 there)" if kind == "tpu" else "no GPU"
        raise ValueError(f"mixed_float16 speeds up training on NVIDIA GPUs; this machine has "
                         f"{where}. Received: mixed_precision='mixed_float16'")
    if policy == "mixed_bfloat16" and not (kind == "tpu" or _bfloat16_hardware(gpus)):
        raise ValueError(
            "mixed_bfloat16 needs bfloat16 hardware: a TPU, an NVIDIA GPU of compute capability "
            ">= 8.0, or a CPU with AVX512_BF16/AMX; none found. "
            "Received: mixed_precision='mixed_bfloat16'"
        )


def check_mixed_precision(policy: str) -> None:
    """Refuse a mixed-precision policy this machine has no units for (outside training too).

    Raises:
        ValueError: ``mixed_float16`` without an NVIDIA GPU, ``mixed_bfloat16`` without a TPU,
            an Ampere+ GPU or a CPU with bfloat16 units.

    Example:
        >>> check_mixed_precision("none")
    """
    if policy == "none":
        return
    import tensorflow as tf

    kind = "tpu" if _tpu_attached() else "default"
    _check_precision(policy, kind, tf.config.list_physical_devices("GPU"))


_SUGGESTED: set[str] = set()


def suggest_bfloat16(policy: str, flag: str = "mixed_precision='mixed_bfloat16'") -> bool:
    """Say once per process that this CPU has bfloat16 units and which option uses them.

    Never switches anything on: the user decides (on some CPUs it is not faster; the
    benchmarks measure both). Returns whether the hint was given.

    Example:
        >>> suggest_bfloat16("mixed_bfloat16")  # already chosen: nothing to say
        False
    """
    if policy != "none" or flag in _SUGGESTED or not cpu_has_bfloat16():
        return False
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):  # the GPU does the work: its own advice applies
        return False
    _SUGGESTED.add(flag)
    logger.info("This CPU has bfloat16 units: %s may run faster (accuracy within a few tenths "
                "of a point; the benchmarks in benchmarks/ measure both on this machine).", flag)
    return True


def cpu_has_bfloat16() -> bool:
    """Whether this CPU has bfloat16 units (AVX512-BF16 or AMX), read from ``/proc/cpuinfo``.

        >>> isinstance(cpu_has_bfloat16(), bool)
        True
    """
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("avx512_bf16", "amx_bf16"))


def _bfloat16_hardware(gpus: list) -> bool:
    import tensorflow as tf

    if gpus:
        details = [tf.config.experimental.get_device_details(g) for g in gpus]
        return all(d.get("compute_capability", (0, 0)) >= (8, 0) for d in details)
    return cpu_has_bfloat16()


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
