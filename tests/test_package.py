"""The package: importing it makes the Keras 2/3 trap impossible; the public API resolves."""

from __future__ import annotations

import subprocess
import sys

import tfemotion


def test_import_selects_keras_2_for_tf_keras():
    code = ("import tfemotion, tensorflow as tf, tf_keras;"
            "print(type(tf.keras.optimizers.Adam()).__module__.split('.')[0])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tf_keras"


def test_import_is_light():
    code = ("import sys, tfemotion;"
            "print(sorted(m for m in ('tensorflow', 'transformers', 'datasets') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in tfemotion.__all__:
        assert getattr(tfemotion, name) is not None, name
