"""Colab set-up: keep the runtime's TensorFlow (and its GPU), pin what goes with it."""

from __future__ import annotations

import pytest

from tfemotion import colab


@pytest.mark.parametrize("version", ["2.16.1", "2.19.0", "2.21.0"])
def test_a_supported_tensorflow_is_kept_with_the_tf_keras_of_its_minor_version(version):
    plan = colab.plan_install(version, gpu=True)
    series = ".".join(version.split(".")[:2])
    assert plan.tensorflow is None
    assert plan.constraints[0] == f"tensorflow=={version}"
    assert f"tf-keras=={series}.*" in plan.constraints
    assert f"tensorflow-serving-api=={series}.*" in plan.constraints
    assert "keeping the runtime's TensorFlow" in plan.reason and "GPU" in plan.reason


@pytest.mark.parametrize("version, gpu, expected", [
    ("2.15.1", True, "tensorflow[and-cuda]==2.21.*"),
    ("2.23.0", True, "tensorflow[and-cuda]==2.21.*"),
    (None, False, "tensorflow==2.21.*"),
])
def test_an_unsupported_or_missing_tensorflow_is_replaced_by_one_that_keeps_the_gpu(
        version, gpu, expected):
    plan = colab.plan_install(version, gpu=gpu)
    assert plan.tensorflow == expected
    assert "tf-keras==2.21.*" in plan.constraints


def test_install_requirements_runs_one_pip_command_with_the_constraints(tmp_path):
    commands = []
    plan = colab.install_requirements(
        ["umap"], run=lambda command, check: commands.append(command),
        tensorflow_version="2.20.0", gpu=True)
    assert plan.tensorflow is None and len(commands) == 1
    command = commands[0]
    assert command[1:5] == ["-m", "pip", "install", "--quiet"]
    with open(command[command.index("-c") + 1]) as handle:
        assert handle.read().split() == plan.constraints
    assert "umap-learn>=0.5" in command and not any(a.startswith("pytest") for a in command)


def test_model_server_release_matches_the_tensorflow_that_writes_exports():
    assert colab.model_server_version("2.18.0") == "2.18.1"
    assert colab.model_server_version("2.21.0") == colab.NEWEST_MODEL_SERVER == "2.20.0"
    # Every supported TensorFlow maps to a release that exists (tensorflow/serving's tags).
    low, high = colab.SUPPORTED_TENSORFLOW
    for minor in range(low[1], high[1] + 1):
        assert colab.model_server_version(f"2.{minor}.0") in colab.MODEL_SERVER_RELEASES.values()
    commands = []
    assert colab.install_model_server("2.19.0", run=lambda c, check: commands.append(c),
                                      folder="/x") == "2.19.0"
    assert commands[0][-1] == ("http://storage.googleapis.com/tensorflow-serving-apt/pool/"
                               "tensorflow-model-server-universal-2.19.0/t/"
                               "tensorflow-model-server-universal/"
                               "tensorflow-model-server-universal_2.19.0_all.deb")
    assert commands[1] == ["dpkg", "-i", "/x/tensorflow-model-server-universal_2.19.0_all.deb"]


def test_choose_server_prefers_tensorflow_serving_on_colab(monkeypatch):
    import sys
    import types

    assert colab.choose_server("tfemotion") == "tfemotion"
    monkeypatch.setattr(colab.shutil, "which", lambda name: None)
    assert colab.choose_server("auto") == "tfemotion"
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert colab.choose_server("auto") == "tensorflow_model_server"
    with pytest.raises(ValueError, match="Received: SERVER='tf-serving'"):
        colab.choose_server("tf-serving")
