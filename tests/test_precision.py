"""`auto` precision follows the CPU in every backend and in training: bfloat16 only where the CPU has
native bf16 (AVX-512 BF16 or AMX). On an AVX2-only CPU bf16 is emulated, ~80x slower than float32.

The CPU is mocked through the /proc/cpuinfo the code reads, with flag lines of real machines.
"""

import types

import pytest
import torch

from rro.config import TrainConfig
from rro.policy import hf, vllm
from rro.train.common import _use_bf16

# Trimmed flag lines: an AVX2-only AMD EPYC (Zen 2), a Zen 4 EPYC, an Intel Sapphire Rapids (AMX).
AVX2_ONLY = "fpu vme sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi1 bmi2 sha_ni clwb"
ZEN4 = "fpu sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni"
SAPPHIRE_RAPIDS = "fpu sse2 avx avx2 avx512f avx512_vnni amx_bf16 amx_tile amx_int8"


@pytest.fixture
def cpu(tmp_path, monkeypatch):
    """Make the code see a CPU with the given flags (on two cores, as /proc/cpuinfo lists them)."""

    def with_flags(flags: str) -> None:
        cpuinfo = tmp_path / "cpuinfo"
        cpuinfo.write_text("".join(f"processor\t: {n}\nmodel name\t: mocked\nflags\t\t: {flags}\n\n" for n in range(2)))
        monkeypatch.setattr(hf, "CPUINFO", cpuinfo)

    return with_flags


@pytest.mark.parametrize("flags, native", [(AVX2_ONLY, False), (ZEN4, True), (SAPPHIRE_RAPIDS, True)])
def test_transformers_backend_auto_dtype_follows_the_cpu(cpu, flags, native):
    cpu(flags)
    assert hf.cpu_supports_bf16() is native
    assert hf.pick_dtype("auto", "cpu") == (torch.bfloat16 if native else torch.float32)
    assert hf.pick_dtype("auto", "cuda") == torch.bfloat16  # the GPU decides, not the CPU
    assert hf.pick_dtype("bfloat16", "cpu") == torch.bfloat16  # an explicit choice stands


def test_unreadable_cpuinfo_means_float32(tmp_path, monkeypatch):
    monkeypatch.setattr(hf, "CPUINFO", tmp_path / "missing")
    assert hf.cpu_flags() == set()
    assert hf.pick_dtype("auto", "cpu") == torch.float32


def test_the_cpu_is_described_by_family_and_model(tmp_path, monkeypatch):
    """Virtual machines name only the vendor line: the family and model tell a Zen 3 from a Zen 4."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("".join(f"processor\t: {n}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
                               f"model name\t: AMD EPYC\nflags\t\t: {AVX2_ONLY}\n\n" for n in range(2)))
    monkeypatch.setattr(hf, "CPUINFO", cpuinfo)
    assert hf.cpu_description() == "AMD EPYC (family 25, model 1)"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: mocked\n")  # no family line (e.g. an ARM kernel's)
    assert hf.cpu_description() == "mocked"
    monkeypatch.setattr(hf, "CPUINFO", tmp_path / "missing")
    assert hf.cpu_description() == "unknown CPU"


def test_a_flag_is_matched_whole(cpu):
    cpu("avx2 avx512_bf16x")  # not a flag the kernel lists, but no substring may pass for one
    assert not hf.cpu_supports_bf16()


@pytest.mark.parametrize("flags, expected", [(AVX2_ONLY, "float32"), (ZEN4, "bfloat16"), (SAPPHIRE_RAPIDS, "bfloat16")])
def test_vllm_engine_on_cpu_starts_in_the_cpus_dtype(cpu, monkeypatch, flags, expected):
    """vLLM's own `auto` would cast rro's float32 checkpoints to bfloat16 on any x86 CPU: the engine
    must be asked for the CPU's dtype explicitly. vLLM itself is replaced by a recorder of what it is asked."""
    cpu(flags)
    started = []
    monkeypatch.setattr(vllm, "vllm", types.SimpleNamespace(LLM=lambda **options: started.append(options)))
    monkeypatch.setattr(vllm, "on_cpu", lambda: True)
    vllm._start_engine(vllm.EngineSettings(path="/models/m"))
    vllm._start_engine(vllm.EngineSettings(path="/models/m", dtype="bfloat16"))
    assert [options["dtype"] for options in started] == [expected, "bfloat16"]  # an explicit choice stands


def test_vllm_engine_on_a_gpu_keeps_vllms_own_choice(cpu, monkeypatch):
    cpu(AVX2_ONLY)
    started = []
    monkeypatch.setattr(vllm, "vllm", types.SimpleNamespace(LLM=lambda **options: started.append(options)))
    monkeypatch.setattr(vllm, "on_cpu", lambda: False)
    vllm._start_engine(vllm.EngineSettings(path="/models/m"))
    assert started[0]["dtype"] == "auto"


@pytest.mark.parametrize("flags, native", [(AVX2_ONLY, False), (ZEN4, True)])
def test_training_autocast_follows_the_cpu(cpu, tmp_path, flags, native):
    cpu(flags)
    assert _use_bf16(TrainConfig(output=tmp_path / "out", device="cpu")) is native
    assert _use_bf16(TrainConfig(output=tmp_path / "out", device="cpu", precision="fp32")) is False
