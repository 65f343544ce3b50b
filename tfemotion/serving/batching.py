"""Server-side batching as TensorFlow Serving does it (``--enable_batching``).

``BatchingParameters`` reads the text file of ``--batching_parameters_file``
(``serving/batching.config``); ``BatchScheduler`` sits in front of one loaded version and merges
concurrent requests the way ``batching_session.cc`` and TensorFlow's ``shared_batch_scheduler.h``
do:

- one queue per signature (the names it feeds and fetches);
- requests (tasks) join the open batch of their queue while it has room; a batch is full at
  ``max_batch_size`` rows (``max_execution_batch_size`` with splitting, below) and runs when full
  or ``batch_timeout_micros`` after its first task arrived, on one of ``num_batch_threads``
  threads;
- a task larger than ``max_batch_size`` is refused (INVALID_ARGUMENT); a task that does not fit
  in the open batch while ``max_enqueued_batches`` batches already wait in the queue (the open one
  counts): UNAVAILABLE, at once;
- ``enable_large_batch_splitting { value: true }`` (a wrapped bool, like ``max_batch_size``):
  ``max_batch_size`` is then only the largest task accepted, and a batch is full at
  ``max_execution_batch_size { value: N }`` rows (default: ``max_batch_size``, which it must not
  exceed). A task larger than the room left in the open batch is split: its first rows fill the
  open batch, the rest go into new batches of at most ``max_execution_batch_size`` rows. The
  caller waits for every part and gets their outputs concatenated in order, or the first error a
  part met. The queue bound then counts rows: a task is refused (UNAVAILABLE) when it is larger
  than ``(max_enqueued_batches - waiting batches) * max_execution_batch_size`` plus the room left
  in the open batch. Without splitting ``max_execution_batch_size`` is ignored;
- inputs are concatenated along the batch dimension. Tensors whose other dimensions differ
  between tasks fail the whole batch with FAILED_PRECONDITION, unless
  ``pad_variable_length_inputs``: then each task's tensor is padded to the largest size with
  **its own first element** (``batching_util.cc``), which is why token ids must not be batched
  that way (a padded ``input_ids`` gets ``[CLS]``, its ``attention_mask`` 1s); a part of a split
  task is a task of its own here;
- the merged batch is rounded up to the next ``allowed_batch_sizes`` entry by repeating the
  first row of the last task; outputs are split back by task (the padding rows dropped), and an
  output without a batch dimension fails the batch. The model server checks that the last entry
  equals ``max_batch_size``, with splitting too (``bundle_factory_util.cc``), so with a smaller
  ``max_execution_batch_size`` a batch may be padded beyond it.

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

from tfemotion.export.servable import ServableError

# BatchingParameters fields of TensorFlow Serving (session_bundle_config.proto): the wrapped
# ones (google.protobuf.*Value) are written `name { value: N }`, the plain ones `name: value`.
_WRAPPED = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads",
            "thread_pool_name", "enable_large_batch_splitting", "max_execution_batch_size")
_PLAIN = ("allowed_batch_sizes", "pad_variable_length_inputs")
_BOOLS = ("pad_variable_length_inputs", "enable_large_batch_splitting")
_KNOWN = _WRAPPED + _PLAIN


@dataclass(frozen=True)
class BatchingParameters:
    """The settings of TensorFlow Serving's batching (text-format ``BatchingParameters``).

    ``max_execution_batch_size`` is None when not given; see ``execution_batch_size``.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 4
    allowed_batch_sizes: tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False
    enable_large_batch_splitting: bool = False
    max_execution_batch_size: Optional[int] = None

    def __post_init__(self) -> None:
        for name in ("max_batch_size", "max_enqueued_batches", "num_batch_threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be positive. Received: {name}={getattr(self, name)}")
        if self.batch_timeout_micros < 0:
            raise ValueError("batch_timeout_micros must be >= 0. Received: "
                             f"batch_timeout_micros={self.batch_timeout_micros}")
        if self.enable_large_batch_splitting:
            self._check_splitting()
        sizes = self.allowed_batch_sizes
        if sizes:  # TensorFlow Serving's own checks, with its words
            if list(sizes) != sorted(set(sizes)) or sizes[0] < 1:
                raise ValueError("allowed_batch_sizes entries must be monotonically increasing. "
                                 f"Received: allowed_batch_sizes={list(sizes)}")
            # The model server's check (WrapSessionForBatching), with splitting as without: the
            # check against max_execution_batch_size is CreateBasicBatchingSession's, which the
            # model server does not use.
            if sizes[-1] != self.max_batch_size:
                raise ValueError("Last entry in allowed_batch_sizes must match max_batch_size; "
                                 f"last entry was {sizes[-1]}; expected {self.max_batch_size}")

    def _check_splitting(self) -> None:
        """``max_batch_size`` must cover ``max_execution_batch_size`` (``AddQueue`` in
        ``shared_batch_scheduler.h``), which must be positive (TensorFlow Serving takes 0 and
        then refuses every request)."""
        if self.max_execution_batch_size is not None and self.max_execution_batch_size < 1:
            raise ValueError("max_execution_batch_size must be positive. Received: "
                             f"max_execution_batch_size={self.max_execution_batch_size}")
        if self.execution_batch_size > self.max_batch_size:
            raise ValueError(
                "When enable_large_batch_splitting is true, input_batch_size_limit must be "
                "greater than or equal to max_execution_batch_size (input_batch_size_limit is "
                f"max_batch_size). Received: max_batch_size={self.max_batch_size}, "
                f"max_execution_batch_size={self.max_execution_batch_size}")

    @property
    def execution_batch_size(self) -> int:
        """The size at which a batch is full: ``max_execution_batch_size`` (by default
        ``max_batch_size``) with splitting, ``max_batch_size`` without.

        Example:
            >>> BatchingParameters(max_batch_size=8, max_execution_batch_size=2,
            ...                    enable_large_batch_splitting=True).execution_batch_size
            2
            >>> BatchingParameters(max_batch_size=8, max_execution_batch_size=2
            ...                    ).execution_batch_size  # ignored without splitting
            8
        """
        if self.enable_large_batch_splitting and self.max_execution_batch_size is not None:
            return self.max_execution_batch_size
        return self.max_batch_size

    @classmethod
    def from_text(cls, text: str) -> "BatchingParameters":
        """Parse the text format: ``name { value: N }`` (or ``name: { value: N }``),
        ``name: value``, ``allowed_batch_sizes: [4, 8]``, ``#`` comments.

        ``thread_pool_name`` is accepted and ignored (it only names the threads). Booleans are
        written as protobuf's text format allows: ``true``/``True``/``t``/``1`` or
        ``false``/``False``/``f``/``0``.

        Raises:
            ValueError: a field TensorFlow Serving does not know, one written in the wrong form,
                a bad value, or ``enable_large_batch_splitting`` with neither ``max_batch_size``
                nor ``max_execution_batch_size`` (TensorFlow Serving then takes the unset
                ``max_batch_size``, 0, as ``max_execution_batch_size`` and answers every request
                UNAVAILABLE).

        Example:
            >>> BatchingParameters.from_text("max_batch_size: { value: 8 } "
            ...                              "allowed_batch_sizes: [4, 8]").allowed_batch_sizes
            (4, 8)
            >>> params = BatchingParameters.from_text(
            ...     "max_batch_size { value: 64 } enable_large_batch_splitting { value: true } "
            ...     "max_execution_batch_size { value: 16 }")
            >>> params.max_batch_size, params.execution_batch_size
            (64, 16)
        """
        body = re.sub(r"#[^\n]*", "", text)
        values: dict[str, str] = {}
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
            else:
                values[name] = value
        leftover = re.sub(r"(\w+)\s*:\s*([^\s{]+)", " ", body).strip()
        if leftover:
            raise ValueError(f"cannot parse {leftover[:60]!r}")
        values.pop("thread_pool_name", None)
        kwargs = {name: _parse_bool(name, value) if name in _BOOLS else int(value)
                  for name, value in values.items()}
        if (kwargs.get("enable_large_batch_splitting")
                and not {"max_batch_size", "max_execution_batch_size"} & set(kwargs)):
            raise ValueError("enable_large_batch_splitting needs max_batch_size or "
                             "max_execution_batch_size: without either TensorFlow Serving takes "
                             "the unset max_batch_size (0) as max_execution_batch_size and "
                             "answers every request UNAVAILABLE")
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
    if name not in _KNOWN:
        raise ValueError(f"unknown batching parameter {name!r}; known: {', '.join(_KNOWN)}")
    if wrapped != (name in _WRAPPED):
        form = f"{name} {{ value: ... }}" if name in _WRAPPED else f"{name}: ..."
        raise ValueError(f"{name} is written `{form}`")


def _parse_bool(name: str, text: str) -> bool:
    """A bool as protobuf's text format reads it.

    Example:
        >>> _parse_bool("pad_variable_length_inputs", "True"), _parse_bool("x", "0")
        (True, False)
    """
    if text in ("true", "True", "t", "1"):
        return True
    if text in ("false", "False", "f", "0"):
        return False
    raise ValueError(f"{name} must be true or false, got {text!r}")


def _split_sizes(size: int, room: int, limit: int) -> list[int]:
    """The part sizes of a task of ``size`` rows split over batches of at most ``limit`` rows,
    the first filling the ``room`` left in the open batch (``input_split_metadata.cc``).

    Example:
        >>> _split_sizes(10, 3, 4), _split_sizes(9, 0, 4), _split_sizes(5, 3, 4)
        ([3, 4, 3], [4, 4, 1], [3, 2])
    """
    sizes = [min(size, room if room > 0 else limit)]
    rest = size - sizes[0]
    while rest > 0:
        sizes.append(min(limit, rest))
        rest -= sizes[-1]
    return sizes


@dataclass
class _Task:
    """One request, or one part of a request split over batches (``split`` is then set)."""

    inputs: dict[str, np.ndarray]
    size: int
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    outputs: Optional[dict[str, np.ndarray]] = None
    error: Optional[ServableError] = None
    split: Optional["_Split"] = None
    index: int = 0  # the part's position in ``split``


@dataclass
class _Split:
    """A request split over batches: collects its parts' outputs, wakes it after the last."""

    task: _Task
    outputs: list
    left: int
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


def _split(task: _Task, sizes: list[int]) -> list[_Task]:
    """Cut ``task`` into parts of ``sizes`` rows (in order) that report back to it."""
    split = _Split(task, [None] * len(sizes), len(sizes))
    parts, start = [], 0
    for index, size in enumerate(sizes):
        inputs = {name: value[start:start + size] for name, value in task.inputs.items()}
        parts.append(_Task(inputs, size, split=split, index=index))
        start += size
    return parts


def _finish(task: _Task) -> None:
    """Wake a task's caller; for a part, once all parts of its request are done. The request
    gets the first error any part met, or the parts' outputs concatenated in order."""
    split = task.split
    if split is None:
        task.done.set()
        return
    whole = split.task
    with split.lock:
        split.outputs[task.index] = task.outputs
        if task.error is not None and whole.error is None:
            whole.error = task.error
        split.left -= 1
        if split.left:
            return
    if whole.error is None:
        try:
            whole.outputs = _concatenate(split.outputs)
        except ServableError as error:
            whole.error = error
        except Exception as error:  # never leave the caller waiting
            whole.error = ServableError("INTERNAL", f"{type(error).__name__}: {error}")
    whole.done.set()


def _concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The outputs of a split request: its parts' outputs joined along the batch dimension.

    Example:
        >>> _concatenate([{"y": np.array([1, 2])}, {"y": np.array([3])}])["y"].tolist()
        [1, 2, 3]
    """
    joined = {}
    for name in parts[0]:
        values = [part[name] for part in parts]
        if len({np.shape(value)[1:] for value in values}) > 1:
            # TensorFlow's tensor::Concat does not check this (it copies bytes into the first
            # part's shape); fail loudly rather than return wrong rows.
            raise ServableError("INTERNAL", f"Output tensor '{name}' has different shapes in "
                                "the parts of a split task: "
                                f"{[list(np.shape(value)) for value in values]}")
        joined[name] = np.concatenate(values, axis=0)
    return joined


@dataclass
class _Batch:
    key: str
    output_keys: Optional[list]
    opened: float = 0.0  # when its first task arrived
    tasks: list = dataclasses.field(default_factory=list)
    size: int = 0

    def add(self, task: _Task, now: float) -> None:
        if not self.tasks:
            self.opened = now
        self.tasks.append(task)
        self.size += task.size


Run = Callable[[str, dict, Optional[list]], dict]


class BatchScheduler:
    """Merges concurrent runs of one loaded version's signatures into batches (see above).

    Each queue is a list of batches not yet taken by a thread, the last one open (maybe empty),
    as in ``shared_batch_scheduler.h``; a thread takes the first batch when there are several,
    or the open one once it is full or timed out.

    Args:
        run: callable. Runs one (merged) batch: ``run(key, inputs, output_keys) -> outputs``.
        params: BatchingParameters.

    Example:
        >>> def double(key, inputs, output_keys):  # a loaded version's run, in the server
        ...     return {"twice": inputs["x"] * 2}
        >>> scheduler = BatchScheduler(double, BatchingParameters(batch_timeout_micros=0))
        >>> scheduler("serving_default", {"x": np.array([1, 2])})["twice"].tolist()
        [2, 4]
        >>> scheduler.close()
    """

    def __init__(self, run: Run, params: BatchingParameters):
        self._run, self.params = run, params
        self._condition = threading.Condition()
        self._queues: dict[tuple, list[_Batch]] = {}  # waiting batches per queue, last open
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"batch-thread-{i}")
                         for i in range(params.num_batch_threads)]
        for thread in self._threads:
            thread.start()

    def __call__(self, key: str, inputs: dict[str, np.ndarray],
                 output_keys: Optional[list] = None) -> dict[str, np.ndarray]:
        """Run one request's inputs as part of a batch (or of several, split); wait for and
        return its outputs."""
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
        """Add a task (or its parts) to its queue's open batch, opening new ones when full
        (holding the lock)."""
        batches = self._queues.setdefault(queue, [_Batch(key, output_keys)])
        self._check_capacity(batches, task.size)
        limit = self.params.execution_batch_size
        room = limit - batches[-1].size
        parts = [task]
        if task.size > room and self.params.enable_large_batch_splitting:
            parts = _split(task, _split_sizes(task.size, room, limit))
        now = time.monotonic()
        for part in parts:
            if batches[-1].size + part.size > limit:
                batches.append(_Batch(key, output_keys))  # the open batch closes
            batches[-1].add(part, now)
        self._condition.notify_all()

    def _check_capacity(self, batches: list[_Batch], size: int) -> None:
        """UNAVAILABLE when the queue cannot take ``size`` more rows (``batches``: the queue's
        waiting batches, the open one last)."""
        params, open_size = self.params, batches[-1].size
        if params.enable_large_batch_splitting:
            limit = params.execution_batch_size
            capacity = (params.max_enqueued_batches - len(batches)) * limit + limit - open_size
            if size > capacity:
                raise ServableError(
                    "UNAVAILABLE", "The batch scheduling queue to which this task was submitted "
                    f"is full; task size is {size} but scheduling capacity is only {capacity} "
                    f"(num_enqueued_batches={len(batches)}, max_enqueued_batches="
                    f"{params.max_enqueued_batches}, open_batch_size={open_size}, "
                    f"max_execution_batch_size={limit})")
        elif (open_size + size > params.max_batch_size
              and len(batches) >= params.max_enqueued_batches):
            raise ServableError(
                "UNAVAILABLE", "The batch scheduling queue to which this task was submitted is "
                f"full; currently {len(batches)} batches enqueued and max_enqueued_batches is "
                f"{params.max_enqueued_batches}")

    def num_enqueued_tasks(self) -> int:
        """Tasks waiting in the queues, not yet taken by a thread (a part of a split request
        counts as a task), as TensorFlow's ``BatchScheduler::NumEnqueuedTasks``.

        Example:
            >>> scheduler = BatchScheduler(lambda key, inputs, keys: inputs, BatchingParameters())
            >>> scheduler.num_enqueued_tasks()
            0
            >>> scheduler.close()
        """
        with self._condition:
            return sum(len(batch.tasks) for batches in self._queues.values()
                       for batch in batches)

    def close(self) -> None:
        """Run what is queued, then stop the threads (the version is unloaded); requests
        arriving later run one by one, unbatched."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()

    def _next_batch(self) -> Optional[_Batch]:
        """Wait for a batch to run: the first of several waiting in a queue, or an open batch
        that is full, past its timeout, or (when stopping) not empty; None when stopping and
        idle."""
        timeout = self.params.batch_timeout_micros / 1e6
        limit = self.params.execution_batch_size
        with self._condition:
            while True:
                now, deadlines = time.monotonic(), []
                for batches in self._queues.values():
                    last = batches[-1]
                    if len(batches) == 1 and last.tasks:
                        if self._stopping or last.size >= limit or now - last.opened >= timeout:
                            batches.append(_Batch(last.key, last.output_keys))
                        else:
                            deadlines.append(last.opened + timeout - now)
                    if len(batches) > 1:
                        return batches.pop(0)
                if self._stopping:
                    return None
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
                _finish(task)

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
