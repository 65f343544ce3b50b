"""TensorFlow Serving's loading path: a session from the `serve` MetaGraph, SignatureDef tensor
names, the op scan, the warm-up replay, and the standalone check another environment runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from support import REPO, write_fake_export

from tfemotion.export.servable import (ServableError, SessionServable, check,
                                       read_session_config, replay_warmup, scan_ops)


def test_session_servable_answers_like_the_tf2_loaded_model(fake_export):
    servable = SessionServable(fake_export)
    texts = np.array([b"i am so happy", b"sad and gloomy", b""], dtype=object)
    session = servable.run("serving_default", {"text": texts})
    tf2 = tf.saved_model.load(str(fake_export)).signatures["serving_default"](
        text=tf.constant(texts))
    assert [b.decode() for b in session["label"]] == ["joy", "sadness",
                                                       tf2["label"].numpy()[2].decode()]
    np.testing.assert_allclose(session["probabilities"], tf2["probabilities"].numpy(), atol=1e-6)
    only = servable.run("serving_default", {"text": texts}, ["label_id"])
    assert list(only) == ["label_id"]


def test_the_shipped_session_config_gives_the_same_answers(fake_export):
    shipped = REPO / "serving" / "session.config"
    texts = np.array([b"i am so happy", b"sad and gloomy", b"", "\u00e9t\u00e9 \U0001f600".encode()],
                     dtype=object)
    default = SessionServable(fake_export).run("serving_default", {"text": texts})
    configured = SessionServable(fake_export, read_session_config(shipped))
    got = configured.run("serving_default", {"text": texts})
    assert list(got["label"]) == list(default["label"])
    np.testing.assert_allclose(got["probabilities"], default["probabilities"], atol=1e-6)
    assert replay_warmup(configured) > 0


@pytest.mark.integration  # a Python process of its own
def test_loading_prints_no_deprecation_notice(fake_export):
    """The TF1 loader is the point: `tfemotion serve` must not tell users it is deprecated."""
    code = ("import sys; from tfemotion.export.servable import SessionServable; "
            "SessionServable(sys.argv[1]).close()")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", code, str(fake_export)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "deprecated" not in done.stderr, done.stderr[-2000:]


def test_session_servable_checks_input_names_only_like_the_server(fake_export):
    servable = SessionServable(fake_export)
    with pytest.raises(ServableError, match="input size does not match signature") as error:
        servable.run("serving_default", {"texts": np.array([b"x"], object)})
    assert error.value.code == "INVALID_ARGUMENT"
    with pytest.raises(ServableError) as error:  # a wrong dtype fails inside Session.run
        servable.run("encoded", {"input_ids": np.array([["a"]], object),
                                 "attention_mask": np.array([[1]], np.int32)})
    assert error.value.code in ("INVALID_ARGUMENT", "UNIMPLEMENTED", "INTERNAL")
    with pytest.raises(ServableError, match='signature key "nope" not found') as error:
        servable.run("nope", {})
    assert error.value.code == "FAILED_PRECONDITION"


def test_warmup_replay_runs_every_record_and_names_a_failing_one(fake_export, tmp_path):
    assert replay_warmup(SessionServable(fake_export)) == 2
    bad = write_fake_export(tmp_path / "bad", bad_warmup=True)
    with pytest.raises(ServableError, match=r"warm-up record 0 \(predict_log\)"):
        replay_warmup(SessionServable(bad))


def test_op_scan_refuses_ops_that_run_python(tmp_path):
    class WithPython(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def serve(self, text):
            upper = tf.py_function(lambda t: tf.strings.upper(t), [text], tf.string)
            return {"label": upper}

    module = WithPython()
    tf.saved_model.save(module, str(tmp_path / "py"), signatures={"serving_default": module.serve})
    assert scan_ops(tmp_path / "py") == ["EagerPyFunc (runs Python)"]
    report = check(tmp_path / "py")
    assert not report["passed"] and "EagerPyFunc" in report["failures"][0]


def test_check_passes_a_clean_export_with_its_warmup(fake_export):
    report = check(fake_export)
    assert report["passed"], report["failures"]
    assert report["bad_ops"] == [] and report["warmup_records"] == 2
    assert report["tensorflow"] == tf.__version__


@pytest.mark.integration  # a Python process of its own
def test_the_check_runs_as_a_script_without_tfemotion(fake_export):
    """What the second environment runs: the file by path, `python -I`, no tfemotion import."""
    script = REPO / "tfemotion" / "export" / "servable.py"
    code = (f"import runpy, sys; sys.argv = ['servable.py', {str(fake_export)!r}]\n"
            f"try:\n    runpy.run_path({str(script)!r}, run_name='__main__')\n"
            "except SystemExit as exit:\n    code = exit.code\n"
            "print('tfemotion' in sys.modules, code, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.stderr.strip().endswith("False 0"), done.stderr[-2000:]
    assert json.loads(done.stdout)["passed"] is True
