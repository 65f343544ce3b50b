"""Server-side batching as TensorFlow Serving does it (``--enable_batching``).

``BatchingParameters`` reads the text file of ``--batching_parameters_file``
(``serving/batching.config``); ``BatchScheduler`` sits in front of one loaded version and merges
concurrent requests the way ``batching_session.cc`` does:

- one queue per signature (the names it feeds and fetches);
- requests (tasks) join the open batch of their queue while it has room: at most
  ``max_batch_size`` rows; a batch runs when it is full or ``batch_timeout_micros`` after its
  first task arrived, on one of ``num_batch_threads`` threads;
- a task larger than ``max_batch_size`` is refused (INVALID_ARGUMENT); more than
  ``max_enqueued_batches`` waiting batches in a queue: UNAVAILABLE, at once;
- inputs are concatenated along the batch dimension. Tensors whose other dimensions differ
  between tasks fail the whole batch with FAILED_PRECONDITION, unless
  ``pad_variable_length_inputs``: then each task's tensor is padded to the largest size with
  **its own first element** (``batching_util.cc``), which is why token ids must not be batched
  that way (a padded ``input_ids`` gets ``[CLS]``, its ``attention_mask`` 1s);
- the merged batch is rounded up to the next ``allowed_batch_sizes`` entry by repeating the
  first row of the last task; outputs are split back by task (the padding rows dropped), and an
  output without a batch dimension fails the batch.

Example:
    >>> params = BatchingParameters.from_text("max_batch_size { value: 8 }\\n"
    ...                                       "allowed_batch_sizes: 4 allowed_batch_sizes: 8")
    >>> params.max_batch_size, params.allowed_batch_sizes, params.round_up(3)
    (8, (4, 8), 4)
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from tfemotion.servable import ServableError

# BatchingParameters fields of TensorFlow Serving (session_bundle_config.proto): the wrapped
# ones are written `name { value: N }`, the plain ones `name: value`.
_WRAPPED = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
            "thread_pool_name")
_PLAIN = ("allowed_batch_sizes", "pad_variable_length_inputs")
# Known to TensorFlow Serving, changing what a batch is, and not implemented here.
_UNSUPPORTED = ("max_execution_batch_size", "enable_large_batch_splitting")
_KNOWN = _WRAPPED + _PLAIN

@dataclass(frozen=True)
class BatchingParameters:
    """The settings of TensorFlow Serving's batching (text-format ``BatchingParameters``)."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 4
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive. Received: {name}={getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError("batch_timeout_micros must be >= 0. Received: "
                             f"batch_timeout_micros={self.batch_timeout_micros}")
        sizes = self.allowed_batch_sizes
        if sizes:  # TensorFlow Serving's own checks, with its words
            if list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
                raise ValueError("allowed_batch_sizes entries must be monotonically increasing. "
                                 f"Received: allowed_batch_sizes={list(sizes)}")
            if sizes[-1] != self.max_batch_size:
                raise ValueError("Last entry in allowed_batch_sizes must match max_batch_size; "
                                 f"last entry was {sizes[-1]}; expected {self.max_batch_size}")

    @classmethod
    def from_text(cls, text: str) -> "BatchingParameters":
        """Parse the text format: ``name { value: N }`` (or ``name: { value: N }``),
        ``name: value``, ``allowed_batch_sizes: [4, 8]``, ``#`` comments.

        ``thread_pool_name`` is accepted and ignored (it only names the threads).

        Raises:
            ValueError: a field TensorFlow Serving does not know, one this scheduler does not
                implement, or a bad value.

        Example:
            >>> BatchingParameters.from_text("max_batch_size: { value: 8 } "
            ...                              "allowed_batch_sizes: [4, 8]").allowed_batch_sizes
            (4, 8)
        """
        body = re.sub(r"#[^\n]*", "", text)
        values: dict[str, Any] = {}
        wrapped = r"(\w+)\s*:?\s*\{\s*value\s*:\s*([^\s}]+)\s*\}"
        for name, value in re.findall(wrapped, body):
            _check_field(name, wrapped=True)
            values[name] = value
        body = re.sub(wrapped, " ", body)
        sizes = []
        for listed in re.findall(r"allowed_batch_sizes\s*:\s*\[([^\]]*)\]", body):
            sizes += [int(size) for size in listed.split(",") if size.strip()]
        body = re.sub(r"allowed_batch_sizes\s*:\s*\[[^\]]*\]", " ", body)
        for name, value in re.findall(r"(\w+)\s*:\s*([^\s{]+)", body):
            _check_field(name, wrapped=False)
            if name == "allowed_batch_sizes":
                sizes.append(int(value))
            elif value.lower() not in ("true", "false"):
                raise ValueError(f"pad_variable_length_inputs must be true or false, got {value!r}")
            else:
                values[name] = value.lower() == "true"
        leftover = re.sub(r"(\w+)\s*:\s*([^\s{]+)", " ", body).strip()
        if leftover:
            raise ValueError(f"cannot parse {leftover[:60]!r}")
        values.pop("thread_pool_name", None)
        kwargs = {k: int(v) if k != "pad_variable_length_inputs" else v
                  for k, v in values.items()}
        return cls(allowed_batch_sizes=tuple(sizes), **kwargs)

    @classmethod
    def read(cls, path: Any) -> "BatchingParameters":
        """``from_text`` of a file; errors name the file."""
        try:
            return cls.from_text(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from None

    def round_up(self, size: int) -> int:
        """The batch size a merged batch of ``size`` rows runs with (``allowed_batch_sizes``)."""
        return next((allowed for allowed in self.allowed_batch_sizes if allowed >= size), size)


def _check_field(name: str, wrapped: bool) -> None:
    if name in _UNSUPPORTED:
        raise ValueError(f"{name} is not implemented by the development server; remove it to "
                         "try the file here (TensorFlow Serving itself accepts it)")
    if name not in _KNOWN:
        raise ValueError(f"unknown batching parameter {name!r}; known: {', '.join(_KNOWN)}")
    if wrapped != (name in _WRAPPED):
        form = f"{name} {{ value: ... }}" if name in _WRAPPED else f"{name}: ..."
        raise ValueError(f"{name} is written `{form}`")


@dataclass
class _Task:
    inputs: dict[str, np.ndarray]
    size: int
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    outputs: Optional[dict[str, np.ndarray]] = None
    error: Optional[ServableError] = None


@dataclass
class _Batch:
    key: str
    output_keys: Optional[list]
    opened: float
    tasks: list = dataclasses.field(default_factory=list)
    size: int = 0


Run = Callable[[str, dict, Optional[list]], dict]


class BatchScheduler:
    """Merges concurrent runs of one loaded version's signatures into batches (see above).

    Args:
        run: callable. Runs one (merged) batch: ``run(key, inputs, output_keys) -> outputs``.
        params: BatchingParameters.

    Example:
        >>> scheduler = BatchScheduler(servable.run, BatchingParameters())  # doctest: +SKIP
        >>> scheduler(PREDICT, {"text": np.array([b"hi"], object)}, None)  # doctest: +SKIP
    """

    def __init__(self, run: Run, params: BatchingParameters):
        self._run, self.params = run, params
        self._condition = threading.Condition()
        self._open: dict[tuple, _Batch] = {}  # the batch each queue is filling
        self._closed: dict[tuple, list] = {}  # full batches waiting for a thread, per queue
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"batch-thread-{i}")
                         for i in range(params.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def __call__(self, key: str, inputs: dict[str, np.ndarray],
                 output_keys: Optional[list] = None) -> dict[str, np.ndarray]:
        """Run one request's inputs as part of a batch; wait for and return its outputs."""
        sizes = {np.shape(value)[0] if np.ndim(value) else None for value in inputs.values()}
        if len(sizes) != 1 or None in sizes:
            raise ServableError("INVALID_ARGUMENT", "Batching session Run() input tensors must "
                                "have equal 0th-dimension size")
        (size,) = sizes
        if size > self.params.max_batch_size:
            raise ServableError("INVALID_ARGUMENT", f"Task size {size} is larger than maximum "
                                f"input batch size {self.params.max_batch_size}")
        task = _Task(inputs, size)
        queue = (key, tuple(sorted(inputs)), tuple(output_keys or ()))
        with self._condition:
            stopping = self._stopping
            if not stopping:
                self._enqueue(queue, task, key, output_keys)
        if stopping:  # a late request on a version being unloaded runs on its own
            return self._run(key, inputs, output_keys)
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def _enqueue(self, queue: tuple, task: _Task, key: str, output_keys: Optional[list]) -> None:
        """Add a task to its queue's open batch, or open a new one (holding the lock)."""
        size = task.size
        batch = self._open.get(queue)
        waiting = len(self._closed.get(queue, [])) + (batch is not None)  # open batch counts
        if batch is None or batch.size + size > self.params.max_batch_size:
            if waiting >= self.params.max_enqueued_batches:
                raise ServableError("UNAVAILABLE", "The batch scheduling queue to which this "
                                    "task was submitted is full")
            if batch is not None:
                self._close(queue)
            batch = self._open[queue] = _Batch(key, output_keys, time.monotonic())
        batch.tasks.append(task)
        batch.size += size
        if batch.size >= self.params.max_batch_size:
            self._close(queue)
        self._condition.notify_all()

    def close(self) -> None:
        """Run what is queued, then stop the threads (the version is unloaded); requests
        arriving later run one by one, unbatched."""
        with self._condition:
            self._stopping = True
            for queue in list(self._open):
                self._close(queue)
            self._condition.notify_all()

    def _close(self, queue: tuple) -> None:
        self._closed.setdefault(queue, []).append(self._open.pop(queue))

    def _next_batch(self) -> Optional[_Batch]:
        """Wait for a batch that is full or past its timeout; None when stopping and idle."""
        timeout = self.params.batch_timeout_micros / 1e6
        with self._condition:
            while True:
                now = time.monotonic()
                for queue, batch in list(self._open.items()):
                    if now - batch.opened >= timeout:
                        self._close(queue)
                for queue, waiting in self._closed.items():
                    if waiting:
                        return waiting.pop(0)
                if self._stopping:
                    return None
                deadlines = [b.opened + timeout - now for b in self._open.values()]
                self._condition.wait(timeout=min(deadlines) if deadlines else None)

    def _work(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._run_batch(batch)
            except ServableError as error:
                for task in batch.tasks:
                    task.error = error
            except Exception as error:  # never leave a caller waiting
                for task in batch.tasks:
                    task.error = ServableError("INTERNAL", f"{type(error).__name__}: {error}")
            for task in batch.tasks:
                task.done.set()

    def _run_batch(self, batch: _Batch) -> None:
        padded_size = self.params.round_up(batch.size)
        merged = {name: self._merge([task.inputs[name] for task in batch.tasks], name,
                                    padded_size - batch.size)
                  for name in batch.tasks[0].inputs}
        outputs = self._run(batch.key, merged, batch.output_keys)
        start = 0
        for name, value in outputs.items():
            if np.ndim(value) == 0:
                raise ServableError("FAILED_PRECONDITION", "Batched output tensor has 0 "
                                    "dimensions")
            if np.shape(value)[0] != padded_size:
                raise ServableError("FAILED_PRECONDITION", "Batched output tensor's 0th "
                                    "dimension does not equal the sum of the 0th dimension "
                                    "sizes of the input tensors")
        for task in batch.tasks:
            task.outputs = {name: value[start:start + task.size] for name, value in outputs.items()}
            start += task.size

    def _merge(self, tensors: list[np.ndarray], name: str, padding_rows: int) -> np.ndarray:
        inner = {np.shape(t)[1:] for t in tensors}
        if len(inner) > 1:
            if not self.params.pad_variable_length_inputs:
                raise ServableError(
                    "FAILED_PRECONDITION", f"Tensors with name '{name}' from different tasks "
                    "have different shapes and padding is turned off. Set "
                    "pad_variable_length_inputs to true, or ensure that all tensors with the "
                    "same name have equal dimensions starting with the first dim.")
            largest = tuple(max(dims) for dims in zip(*inner))
            tensors = [_pad_with_first_element(t, largest) for t in tensors]
        if padding_rows:
            last = tensors[-1]
            tensors = tensors + [np.repeat(last[:1], padding_rows, axis=0)]
        return np.concatenate(tensors, axis=0)


def _pad_with_first_element(tensor: np.ndarray, inner: tuple) -> np.ndarray:
    """Pad every dimension but the first up to ``inner`` with the tensor's first element.

    Example:
        >>> _pad_with_first_element(np.array([[101, 7]]), (4,)).tolist()
        [[101, 7, 101, 101]]
    """
    widths = [(0, 0)] + [(0, want - have) for want, have in zip(inner, np.shape(tensor)[1:])]
    if tensor.size == 0:
        raise ServableError("INVALID_ARGUMENT", "Got empty tensor in batch of non-empty tensors.")
    return np.pad(tensor, widths, mode="constant", constant_values=tensor.flat[0])
