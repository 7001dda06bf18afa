"""The dtype 'auto' picks bf16 only where the CPU computes it natively, and records never keep 'auto'."""

import json

import pytest
import torch

from seedspace import hardware
from seedspace.backends import loading
from seedspace.cli.main import main

AMX_XEON = "model name\t: Intel(R) Xeon(R) Platinum\nflags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n"
ZEN4_EPYC = "model name\t: AMD EPYC 9R14\nflags\t\t: fpu avx2 avx512f avx512_bf16\n"
AVX2_EPYC = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu avx2 fma\n"


@pytest.mark.parametrize("cpuinfo, native", [(AMX_XEON, True), (ZEN4_EPYC, True), (AVX2_EPYC, False), ("", False)])
def test_auto_is_bf16_only_where_the_cpu_has_it(monkeypatch, cpuinfo, native):
    monkeypatch.setattr(hardware, "_cpuinfo", lambda: cpuinfo)
    assert hardware.cpu_has_native_bf16() is native
    expected = torch.bfloat16 if native else torch.float32
    assert loading.native_dtype("cpu") == expected == loading.resolve_dtype("auto", "cpu")
    assert loading.dtype_name("auto") == str(expected).removeprefix("torch.")
    assert loading.resolve_dtype(None) == torch.float32 and loading.resolve_dtype("float32") == torch.float32
    if cpuinfo:
        assert hardware.cpu_model().startswith(("Intel", "AMD"))


def test_unknown_dtype_names_the_choices():
    with pytest.raises(ValueError, match="unknown dtype 'float8'; choose one of auto, float32, float16, bfloat16"):
        loading.resolve_dtype("float8")


@pytest.mark.parametrize("cpuinfo, bf16", [(AMX_XEON, True), (AVX2_EPYC, False)])
def test_testbed_training_autocasts_only_with_native_bf16(monkeypatch, cpuinfo, bf16):
    from seedspace.testbed.build import TestbedRecipe

    monkeypatch.setattr(hardware, "_cpuinfo", lambda: cpuinfo)
    recipe = TestbedRecipe()
    assert recipe.bf16 is bf16
    # the command that rebuilds the recipe names the precision, whatever machine reads it
    options = recipe.command_options()
    assert options[options.index("--dtype") + 1] == ("bfloat16" if bf16 else "float32")
    assert TestbedRecipe(bf16=not bf16).bf16 is (not bf16)
    with pytest.raises(ValueError, match="bf16"):
        TestbedRecipe(bf16="yes")


@pytest.mark.parametrize("cpuinfo, recorded", [(AMX_XEON, "bfloat16"), (AVX2_EPYC, "float32")])
def test_commands_record_the_dtype_that_ran(monkeypatch, tmp_path, capsys, tiny_testbed_dir, cpuinfo, recorded):
    monkeypatch.setattr(hardware, "_cpuinfo", lambda: cpuinfo)
    out = tmp_path / "run"
    rc = main(["interpolate", "--seeds", "1,2", "--frames", "3", "--model", str(tiny_testbed_dir), "--out", str(out),
               "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["parameters"]["dtype"] == recorded
    # a frame regenerates in the recorded dtype, byte for byte, whatever this machine would pick
    monkeypatch.setattr(hardware, "_cpuinfo", lambda: AVX2_EPYC if recorded == "bfloat16" else AMX_XEON)
    frame = sorted(out.glob("frames/**/*.png"))[1]
    rc = main(["regenerate", str(frame), "--check", "--quiet", "--out", str(tmp_path / "again.png")])
    assert rc == 0, capsys.readouterr().err


def test_torch_threads_gives_the_cores_to_torch_numpy_blas_on_one_thread_inside_then_restored():
    import numpy as np  # noqa: F401  (loads numpy's BLAS)
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {lib["filepath"]: lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    before = blas_threads()
    assert before  # numpy ships a BLAS
    with hardware.torch_threads(None):
        assert set(blas_threads().values()) == {1}
    assert blas_threads() == before
