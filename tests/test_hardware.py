"""Where training runs: strategies and precision, refused when the machine cannot honour them."""

from __future__ import annotations

import pytest
from tfemotion.config import FinetuneConfig
from tfemotion.hardware import resolve_hardware


@pytest.mark.parametrize("changes, message", [
    ({"mixed_precision": "mixed_float16"}, "mixed_float16"),
    ({"strategy": "mirrored"}, "GPU"),
    ({"strategy": "tpu"}, "TPU"),
    ({"strategy": "multi-worker"}, "TF_CONFIG"),
])
def test_resolve_hardware_refuses_options_this_machine_cannot_honour(monkeypatch, changes, message):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match=message):
        resolve_hardware(FinetuneConfig(**changes))


def test_resolve_hardware_refuses_bfloat16_without_bfloat16_hardware(monkeypatch):
    import tfemotion.hardware as hardware

    monkeypatch.setattr(hardware, "_bfloat16_hardware", lambda gpus: False)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="bfloat16 hardware"):
        resolve_hardware(FinetuneConfig(mixed_precision="mixed_bfloat16", strategy="default"))


def test_resolve_hardware_auto_is_one_device_on_a_plain_machine(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    hardware = resolve_hardware(FinetuneConfig())
    assert (hardware.kind, hardware.replicas, hardware.is_chief) == ("default", 1, True)


def test_resolve_hardware_rejects_malformed_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        resolve_hardware(FinetuneConfig())
