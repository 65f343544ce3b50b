"""Where training runs: strategies and precision, refused when the machine cannot honour them.

Every test describes the machine it decides for (a ``Devices`` record), so that each runs the
same on a machine with or without GPUs, a TPU or bfloat16 units."""

from __future__ import annotations

import pytest
from tfemotion.config import FinetuneConfig
from tfemotion.hardware import (CPU_FLAGS_VARIABLE, Devices, check_mixed_precision, cpu_flags,
                                cpu_has_bfloat16, detect_devices, resolve_hardware,
                                suggest_bfloat16)

PLAIN = Devices(cpu_flags=frozenset({"avx2", "fma"}))  # no GPU, no TPU, no bfloat16 units
BF16_CPU = Devices(cpu_flags=frozenset({"avx2", "avx512f", "avx512_bf16"}))
AMPERE, TURING = Devices(gpus=((8, 0),)), Devices(gpus=((7, 5),), cpu_flags=BF16_CPU.cpu_flags)


@pytest.fixture(autouse=True)
def _no_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)


@pytest.mark.parametrize("changes, message", [
    ({"mixed_precision": "mixed_float16"}, "mixed_float16 speeds up training on NVIDIA GPUs"),
    ({"mixed_precision": "mixed_bfloat16"}, "mixed_bfloat16 needs bfloat16 hardware"),
    ({"strategy": "mirrored"}, "this machine has none"),
    ({"strategy": "tpu"}, "none is attached"),
    ({"strategy": "multi-worker"}, "TF_CONFIG unset"),
])
def test_resolve_hardware_refuses_options_a_plain_machine_cannot_honour(changes, message):
    with pytest.raises(ValueError, match=message):
        resolve_hardware(FinetuneConfig(**changes), PLAIN)


@pytest.mark.parametrize("devices, policy", [
    (BF16_CPU, "mixed_bfloat16"), (AMPERE, "mixed_bfloat16"), (AMPERE, "mixed_float16"),
    (TURING, "mixed_float16")])
def test_resolve_hardware_takes_mixed_precision_where_the_units_are(devices, policy):
    hardware = resolve_hardware(FinetuneConfig(mixed_precision=policy, strategy="default"),
                                devices)
    assert (hardware.kind, hardware.replicas, hardware.is_chief) == ("default", 1, True)


def test_a_gpu_without_bfloat16_units_decides_even_beside_a_cpu_with_them():
    with pytest.raises(ValueError, match="bfloat16 hardware"):
        resolve_hardware(FinetuneConfig(mixed_precision="mixed_bfloat16"), TURING)
    with pytest.raises(ValueError, match="bfloat16 hardware"):
        check_mixed_precision("mixed_bfloat16", TURING)
    check_mixed_precision("mixed_bfloat16", BF16_CPU)
    check_mixed_precision("none", PLAIN)


def test_resolve_hardware_auto_is_one_device_on_a_plain_machine():
    hardware = resolve_hardware(FinetuneConfig(), PLAIN)
    assert (hardware.kind, hardware.replicas, hardware.is_chief) == ("default", 1, True)


def test_resolve_hardware_rejects_malformed_tf_config(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG"):
        resolve_hardware(FinetuneConfig(), PLAIN)


def test_the_bfloat16_hint_is_said_once_on_a_cpu_with_the_units_only(caplog):
    with caplog.at_level("INFO", logger="tfemotion.hardware"):
        assert not suggest_bfloat16("none", "--flag-a", PLAIN)
        assert not suggest_bfloat16("none", "--flag-a", Devices(gpus=((8, 0),),
                                                                cpu_flags=BF16_CPU.cpu_flags))
        assert not suggest_bfloat16("mixed_bfloat16", "--flag-a", BF16_CPU)  # chosen already
        assert suggest_bfloat16("none", "--flag-a", BF16_CPU)
        assert not suggest_bfloat16("none", "--flag-a", BF16_CPU)  # once per process
    (hint,) = [r.getMessage() for r in caplog.records if "bfloat16 units" in r.getMessage()]
    assert "--flag-a may run faster" in hint


def test_cpu_flags_come_from_the_variable_or_from_proc_cpuinfo(monkeypatch, fake_machine):
    monkeypatch.setenv(CPU_FLAGS_VARIABLE, "avx2  avx512_bf16")
    assert cpu_flags() == {"avx2", "avx512_bf16"} and cpu_has_bfloat16()
    monkeypatch.setenv(CPU_FLAGS_VARIABLE, "")  # a CPU without any flag of note
    assert cpu_flags() == frozenset() and not cpu_has_bfloat16()
    assert cpu_has_bfloat16(["amx_bf16"]) and not cpu_has_bfloat16(["avx512f", "avx512_vnni"])
    # Two processors, as /proc/cpuinfo lists them: every "flags" line, nothing else.
    text = ("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_bf16\n\n"
            "processor\t: 1\nflags\t\t: fpu avx2 avx512_bf16\nbugs\t\t: sysret_ss_attrs\n")
    assert cpu_flags(text) == {"fpu", "avx2", "avx512_bf16"}
    monkeypatch.delenv(CPU_FLAGS_VARIABLE)
    try:
        with open("/proc/cpuinfo") as handle:  # read on purpose, where there is one
            expected = cpu_flags(handle.read())
    except OSError:
        expected = frozenset()
    assert cpu_flags() == expected


def test_detect_devices_is_the_seam_every_decision_goes_through(monkeypatch, fake_machine):
    monkeypatch.setenv(CPU_FLAGS_VARIABLE, "avx512_bf16")
    assert detect_devices().cpu_flags == {"avx512_bf16"}
    fake_machine(cpu_flags=["avx2"])
    with pytest.raises(ValueError, match="bfloat16 hardware"):
        check_mixed_precision("mixed_bfloat16")
    with pytest.raises(ValueError, match="bfloat16 hardware"):
        resolve_hardware(FinetuneConfig(mixed_precision="mixed_bfloat16"))
    fake_machine(gpus=[(8, 6)])
    check_mixed_precision("mixed_bfloat16")
    assert resolve_hardware(FinetuneConfig(mixed_precision="mixed_float16",
                                           strategy="default")).kind == "default"
