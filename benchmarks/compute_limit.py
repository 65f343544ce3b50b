"""The compute limit of a benchmark: texts/s if every matrix product ran at this machine's
measured matmul rate and nothing else cost anything.

A transformer encoder's work is almost all matrix products. For a text of ``L`` tokens, a
forward pass through ``layers`` layers of width ``h`` with feed-forward width ``i`` costs about
``2 L (4 h^2 + 2 h i)`` FLOPs per layer for the projections and feed-forward, plus
``4 L^2 h`` for attention scores and their weighted sum (each text padded only to itself).
Training costs about three forward passes (forward, and the backward pass's two products per
weight). The rate is ``tf.matmul``'s, measured here at the shape of one feed-forward product
of a batch (``tokens x h`` by ``h x i``), in float32 and bfloat16.

Used by bench_features.py, bench_serving.py and bench_finetune.py::

    limit = ComputeLimit.measure(model_config, lengths)
    print(limit.describe(measured_texts_per_s, passes=1))
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


def forward_flops(lengths: Sequence[int], layers: int, hidden: int, intermediate: int) -> float:
    """FLOPs of one forward pass over texts of these token lengths (no padding).

    Example:
        >>> forward_flops([10], layers=1, hidden=4, intermediate=16)
        5440.0
    """
    tokens = np.asarray(lengths, dtype=np.float64)
    per_layer = 2 * tokens * (4 * hidden ** 2 + 2 * hidden * intermediate) \
        + 4 * tokens ** 2 * hidden
    return float(layers * per_layer.sum())


def matmul_gflops(dtype: str, rows: int, inner: int, columns: int, seconds: float = 1.0) -> float:
    """Measured GFLOP/s of ``tf.matmul`` at ``[rows, inner] x [inner, columns]``."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal([rows, inner]), dtype)
    b = tf.cast(tf.random.normal([inner, columns]), dtype)
    product = tf.function(lambda x, y: tf.matmul(x, y))
    product(a, b).numpy()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        product(a, b).numpy()
        calls += 1
    return 2 * rows * inner * columns * calls / (time.perf_counter() - start) / 1e9


@dataclass(frozen=True)
class ComputeLimit:
    """Matmul rates and the model's FLOPs per text, on the benchmark's own texts."""

    flops_per_text: float
    gflops: dict[str, float]  # dtype -> measured GFLOP/s

    @classmethod
    def measure(cls, model_config: Any, lengths: Sequence[int], batch_tokens: int = 2048,
                dtypes: tuple[str, ...] = ("float32", "bfloat16")) -> "ComputeLimit":
        """Measure the rates at a batch of ``batch_tokens`` tokens; count the FLOPs of
        ``lengths`` (the texts' token counts) for ``model_config`` (a transformers config)."""
        layers, hidden, intermediate = _dimensions(model_config)
        flops = forward_flops(lengths, layers, hidden, intermediate) / max(len(lengths), 1)
        rates = {dtype: matmul_gflops(dtype, batch_tokens, hidden, intermediate)
                 for dtype in dtypes}
        return cls(flops, rates)

    def texts_per_s(self, dtype: str = "float32", passes: float = 1.0) -> float:
        """The limit: texts/s at the matmul rate of ``dtype``, ``passes`` forward passes each."""
        return self.gflops[dtype] * 1e9 / (self.flops_per_text * passes)

    def describe(self, passes: float = 1.0) -> str:
        """One line: FLOPs per text, the rates and the limits."""
        limits = ", ".join(f"{dtype} {rate:.0f} GFLOP/s -> {self.texts_per_s(dtype, passes):.0f}"
                           " texts/s" for dtype, rate in self.gflops.items())
        return (f"compute limit ({self.flops_per_text * passes / 1e9:.2f} GFLOP per text, "
                f"{passes:g} forward pass{'es' if passes != 1 else ''}; tf.matmul measured): "
                f"{limits}")


def _dimensions(config: Any) -> tuple[int, int, int]:
    """(layers, hidden, intermediate) of a BERT-, DistilBERT- or RoBERTa-style config."""
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers")
    hidden = getattr(config, "hidden_size", None) or getattr(config, "dim")
    intermediate = getattr(config, "intermediate_size", None) or getattr(config, "hidden_dim")
    return int(layers), int(hidden), int(intermediate)


def for_texts(model_dir: str, texts: Sequence[str], max_length: int | None = None) -> ComputeLimit:
    """The limit for a checkpoint folder on these texts (their token counts, truncated)."""
    from transformers import AutoConfig

    from tfemotion.checkpoints import load_tokenizer

    tokenizer = load_tokenizer(str(model_dir))
    limit = max_length or min(tokenizer.model_max_length, 512)
    lengths = [len(ids) for ids in tokenizer(list(texts), truncation=True,
                                               max_length=limit)["input_ids"]]
    return ComputeLimit.measure(AutoConfig.from_pretrained(str(model_dir)), lengths)


def machine() -> str:
    """The machine a figure was measured on: CPU model, cores, ``tf.matmul`` float32 GFLOP/s at
    2048 x 2048 (machines of one kind differ up to 2x: name it beside every absolute figure),
    and the load average (other work halves the figures on 2 cores)."""
    import os
    import platform

    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rate = matmul_gflops("float32", 2048, 2048, 2048)
    return (f"{model}, {os.cpu_count()} cores, tf.matmul float32 {rate:.0f} GFLOP/s at 2048^2, "
            f"load average {os.getloadavg()[0]:.2f}")
