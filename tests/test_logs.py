"""What a run prints: native noise filtered from standard error, real messages kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tfemotion.logs import is_native_noise

CUINIT = (b"E0000 00:00:1796042189.378690    3896 cuda_platform.cc:52] failed call to cuInit: "
          b"INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")


def test_native_noise_is_recognised_by_message_not_by_level():
    assert is_native_noise(CUINIT)
    assert is_native_noise(b"WARNING: All log messages before absl::InitializeLog() is called "
                           b"are written to STDERR\n")
    assert is_native_noise(b"I0000 00:00:17.5   3896 port.cc:153] oneDNN custom operations are "
                           b"on. You may see slightly different numerical results\n")
    assert not is_native_noise(b"E0000 00:00:17.5 3896 bfc_allocator.cc:485] Allocator ran out "
                               b"of memory trying to allocate 2.0GiB\n")
    assert not is_native_noise(b"Epoch 1/2\n")
    assert not is_native_noise(b"Error: failed call to cuInit in my own message\n")


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          timeout=120)


def test_quiet_drops_native_noise_and_keeps_everything_else_in_order():
    result = _run(f"""
        import os, sys
        from tfemotion import logs
        logs.quiet()
        os.write(2, {CUINIT!r})
        os.write(2, b"real error one\\n")
        os.write(2, b"E0000 00:00:1.0 1 bfc_allocator.cc:1] OOM when allocating\\n")
        sys.stderr.write("progress 10%\\rprogress 20%\\r")
        sys.stderr.flush()
        os.write(2, b"E00")          # a noise line written in pieces
        os.write(2, {CUINIT[3:]!r})
        print("to stdout", flush=True)
        raise SystemExit("last words before exit")
    """)
    assert result.returncode == 1
    assert result.stdout == b"to stdout\n"
    assert result.stderr == (b"real error one\nE0000 00:00:1.0 1 bfc_allocator.cc:1] OOM when "
                             b"allocating\nprogress 10%\rprogress 20%\rlast words before exit\n")


def test_quiet_keeps_a_traceback_and_child_process_output():
    result = _run("""
        import subprocess, sys
        from tfemotion import logs
        logs.quiet()
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('from a child\\\\n')"])
        1 / 0
    """)
    assert b"from a child\n" in result.stderr
    assert b"ZeroDivisionError: division by zero" in result.stderr


def test_quiet_drops_the_transformers_banner_and_loading_reports_only():
    result = _run("""
        import logging
        from tfemotion import logs
        logs.quiet()
        log = logging.getLogger("transformers.modeling_tf_utils")
        log.warning("TensorFlow and JAX classes are deprecated and will be removed")
        log.warning("Some layers of TFBertForSequenceClassification were not initialized")
        log.warning("a real transformers warning")
    """)
    assert b"deprecated" not in result.stderr and b"Some layers" not in result.stderr
    assert b"a real transformers warning" in result.stderr


def test_quiet_keeps_the_last_lines_of_a_process_that_aborts():
    """TensorFlow writes its fatal check line, then calls abort(): the line must get out."""
    result = _run("""
        import os
        from tfemotion import logs
        logs.quiet()
        os.write(2, b"F0000 00:00:1.0 1 x.cc:1] Check failed: the reason\\n")
        os.abort()
    """)
    assert result.returncode < 0 or result.returncode == 134
    assert b"Check failed: the reason" in result.stderr
