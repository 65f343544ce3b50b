"""What a run prints: tfemotion's progress and real warnings, not noise a user cannot act on.

``quiet()`` (what the command line and the notebooks call unless asked to be verbose) drops:

* TensorFlow's C++ start-up lines: the INFO ones through ``TF_CPP_MIN_LOG_LEVEL=1`` (set only
  when the user has not set it, and only before TensorFlow loads), and, by pattern, the ones
  logged at a higher level although nothing is wrong: ``failed call to cuInit`` (an *error* on
  every machine without a GPU), absl's "log messages before InitializeLog" line, CUDA plugin
  registration notices;
* Apache Beam's warnings at import and worker start that name libraries bulk scoring does not
  use (apitools for BigQuery, the ``resource`` module for memory figures);
* transformers' "TensorFlow and JAX classes are deprecated" banner and its checkpoint loading
  reports ("Some layers ... were not used", "... newly initialized"): tfemotion's own loading
  report (``tfemotion.checkpoints.load_tf_model``) says what matters in one line.

Real warnings and errors still show. ``show_progress()`` sends tfemotion's own log records
(INFO and up) to standard error, as the command line does.

Example:
    >>> is_native_noise(b"E0000 00:00:17.3 38 cuda_platform.cc:52] failed call to cuInit: x\\n")
    True
    >>> is_native_noise(b"E0000 00:00:17.3 38 bfc_allocator.cc:1] OOM when allocating\\n")
    False
"""

from __future__ import annotations

import atexit
import faulthandler
import logging
import os
import re
import subprocess
import sys
import threading
from typing import Optional

# Messages of TensorFlow's C++ log (glog format: "E0000 00:00:1796.3   38 file.cc:52] message")
# and other native start-up lines that say nothing a user can act on.
_NATIVE_LOG = re.compile(rb"^[IWEF]\d{4} [\d:.]+\s+\d+ [^\]]*\] (?P<message>.*)$", re.S)
_NATIVE_NOISE_MESSAGES = re.compile(
    rb"failed call to cuInit|Could not find cuda drivers|oneDNN custom operations are on"
    rb"|This TensorFlow binary is optimized|Unable to register cu(DNN|FFT|BLAS) factory"
    rb"|computation placer already registered|TF-TRT Warning|successful NUMA node read"
    rb"|oneDNN supports DT_\w+ only on platforms with"
    rb"|Failed to add port to server")  # gRPC's; the development server then says it clearly
_NATIVE_NOISE_LINES = (b"WARNING: All log messages before absl::InitializeLog() is called",
                       b"To enable the following instructions:",
                       # Apache Beam 2.77: at import, and in every RunInference worker without
                       # torch (its ModelManager import fails, taking the resource module along)
                       b"apitools not found, and bigquery client libraries are not available",
                       b"WARNING:root:apitools not found, and bigquery client libraries",
                       b"WARNING:root:Resource module is not available for current platform")
# transformers log records dropped by quiet(), by the start of their message.
TRANSFORMERS_NOISE = ("TensorFlow and JAX classes are deprecated",
                      "Some layers from the model checkpoint at",
                      "All model checkpoint layers were used",
                      "Some layers of ", "All the layers of ", "Some weights of ")
_TRANSFORMERS_LOGGERS = ("transformers.modeling_tf_utils", "transformers.tokenization_utils_base",
                         "transformers.feature_extraction_utils", "transformers.pipelines.base")

_filter: Optional["_NativeStderrFilter"] = None


def quiet() -> None:
    """Drop the noise described in the module docstring, from now on, in this process.

    Call it before TensorFlow is imported to also silence its INFO start-up lines. Calling it
    again does nothing more.

    Example:
        >>> quiet()  # doctest: +SKIP
    """
    global _filter
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    for name in _TRANSFORMERS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _TransformersNoise) for f in logger.filters):
            logger.addFilter(_TransformersNoise())
    if _filter is None:
        try:
            _filter = _NativeStderrFilter()
        except OSError:  # no usable file descriptor 2 (an embedded interpreter): keep it as is
            _filter = None


def show_progress(verbose: bool = False) -> None:
    """Print tfemotion's log records (INFO and up; DEBUG when verbose) on standard error.

    Example:
        >>> show_progress()  # doctest: +SKIP
    """
    logger = logging.getLogger("tfemotion")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not any(getattr(h, "_tfemotion", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter())
        handler._tfemotion = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False


def stderr_is_terminal() -> bool:
    """True when standard error reaches a terminal (looking through ``quiet()``'s pipe).

    Example:
        >>> stderr_is_terminal() == sys.stderr.isatty()  # no quiet() pipe in between here
        True
    """
    if _filter is not None:
        return os.isatty(_filter._target)
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def is_native_noise(line: bytes) -> bool:
    """True for a native log line that ``quiet()`` drops (see the module docstring)."""
    if line.startswith(_NATIVE_NOISE_LINES):
        return True
    match = _NATIVE_LOG.match(line.rstrip(b"\r\n"))
    return bool(match and _NATIVE_NOISE_MESSAGES.search(match.group("message")))


def _may_start_noise(partial: bytes) -> bool:
    """True while an unfinished line could still become a noise line (so it is held back)."""
    if any(marker.startswith(partial) or partial.startswith(marker)
           for marker in _NATIVE_NOISE_LINES):
        return True
    return re.match(rb"^[IWEF](\d{0,4}$|\d{4} )", partial) is not None


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message


class _TransformersNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TRANSFORMERS_NOISE)


class _LineFilter:
    """Drops native noise lines from a byte stream, forwarding everything else at once.

    Unfinished lines are forwarded as they come (progress bars redraw with ``\\r``); only a
    line that may become a noise line is held until it ends.

    Example:
        >>> f = _LineFilter()
        >>> f.feed(b"50%\\r" + b"E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuI")
        b'50%\\r'
        >>> f.feed(b"nit: x\\nreal error\\n")
        b'real error\\n'
    """

    def __init__(self) -> None:
        self.held = b""
        self._inside_line = False  # part of the current line was forwarded: forward the rest

    def feed(self, data: bytes) -> bytes:
        """What of ``data`` (after what was held) can be written now."""
        out = []
        buffer = self.held + data
        while buffer:
            end = min((i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0),
                      default=-1)
            if end >= 0:
                segment, buffer = buffer[:end + 1], buffer[end + 1:]
                if self._inside_line or not is_native_noise(segment):
                    out.append(segment)
                self._inside_line = False
                continue
            if not self._inside_line and _may_start_noise(buffer):
                break  # wait for the rest of the line
            out.append(buffer)
            buffer = b""
            self._inside_line = True
        self.held = buffer
        return b"".join(out)


def filter_stream(source: int, target: int) -> None:
    """Copy file descriptor ``source`` to ``target`` without native noise, until it ends."""
    line_filter = _LineFilter()
    while True:
        try:
            chunk = os.read(source, 65536)
        except OSError:
            break
        if not chunk:
            break
        _write_all(target, line_filter.feed(chunk))
    _write_all(target, line_filter.held)


def _write_all(target: int, data: bytes) -> None:
    while data:
        try:
            data = data[os.write(target, data):]
        except OSError:
            return


class _NativeStderrFilter:
    """Routes file descriptor 2 through a pipe to a small filter process and back to stderr.

    The filter is a process of its own (``python -m tfemotion.logs``), not a thread: when this
    process dies at once (``abort()`` after a fatal TensorFlow check, a segfault, a signal),
    the filter still forwards what was written last, which is what explains the death. At a
    normal exit, file descriptor 2 is put back and the filter is waited for, so the last
    messages come before the shell prompt. Where no filter process can start, a thread does
    the same work.
    """

    def __init__(self) -> None:
        sys.stderr.flush()
        self._target = os.dup(2)
        read, write = os.pipe()
        self._process: Optional[subprocess.Popen] = None
        self._thread: Optional[threading.Thread] = None
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", "from tfemotion.logs import _filter_main; _filter_main()"],
                stdin=read, stdout=self._target, stderr=self._target, close_fds=True,
                env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                    [_PACKAGE_ROOT, *filter(None, [os.environ.get("PYTHONPATH")])])))
            os.close(read)
        except OSError:
            self._thread = threading.Thread(target=self._pump, args=(read,), daemon=True,
                                            name="tfemotion-stderr")
            self._thread.start()
        os.dup2(write, 2)
        os.close(write)
        faulthandler.enable(file=os.fdopen(os.dup(self._target), "w"), all_threads=True)
        atexit.register(self.close)

    def close(self) -> None:
        """Put file descriptor 2 back and wait until the filter forwarded everything."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._target, 2)  # closes our write end: the filter sees the end of the pipe
        if self._process is not None:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # a child of ours still holds the pipe
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _pump(self, read: int) -> None:
        filter_stream(read, self._target)
        os.close(read)


# The folder that holds the tfemotion package, for the filter process's imports.
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _filter_main() -> None:
    """The filter process: standard input to standard output, noise dropped (see above)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: let the main process say its last
    filter_stream(0, 1)
