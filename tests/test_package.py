"""The package: importing it makes the Keras 2/3 trap impossible; the public API resolves."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tfemotion


@pytest.mark.integration  # a Python process of its own
def test_import_selects_keras_2_for_tf_keras():
    code = ("import tfemotion, tensorflow as tf, tf_keras;"
            "print(type(tf.keras.optimizers.Adam()).__module__.split('.')[0])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "tf_keras"


@pytest.mark.integration  # a Python process of its own
def test_import_is_light():
    code = ("import sys, tfemotion;"
            "print(sorted(m for m in ('tensorflow', 'transformers', 'datasets') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]"


def test_public_names_resolve():
    for name in tfemotion.__all__:
        assert getattr(tfemotion, name) is not None, name


@pytest.mark.integration  # a Python process of its own
def test_public_names_are_the_functions_not_the_modules_of_the_same_name():
    """`from tfemotion import predict` must give the function, whatever was imported before."""
    code = ("import importlib, pkgutil, types, tfemotion\n"
            "for info in pkgutil.iter_modules(tfemotion.__path__):\n"
            "    if info.name != '__main__':\n"
            "        importlib.import_module(f'tfemotion.{info.name}')\n"
            "from tfemotion import explore, predict\n"
            "modules = [name for name in tfemotion.__all__\n"
            "           if isinstance(getattr(tfemotion, name), types.ModuleType)]\n"
            "print(modules, callable(predict) and callable(explore))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[] True"


def test_the_tests_mirror_the_package_a_test_module_per_module():
    from pathlib import Path

    package = Path(tfemotion.__file__).parent
    tests = Path(__file__).parent
    missing = [str(path.relative_to(package)) for path in sorted(package.rglob("*.py"))
               if path.name not in ("__init__.py", "__main__.py")
               and not (tests / path.relative_to(package).parent / f"test_{path.name}").is_file()]
    assert missing == []
