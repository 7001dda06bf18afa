"""The generator's levers: inference mode keeps the bytes, the compiled forward is an opt-in recorded setting that
falls back to the eager forward (one log line) wherever it cannot compile, and gradients never take it."""

import logging

import pytest
import torch

import seedspace as ss
from seedspace.backends import acceleration
from seedspace.backends.base import seeds_from_ints
from tiny_models import BATCH_ATOL


@pytest.fixture
def tiny(tiny_testbed_dir):
    return ss.load_model(str(tiny_testbed_dir))


def _no_grad_generate(model, seeds, condition, steps, guidance):
    """Today's generate before inference mode: decode(generate_x0) under no_grad, one batch."""
    with torch.no_grad():
        return model.decode(model.generate_x0(seeds, condition, steps, guidance)).cpu().float()


def test_inference_mode_keeps_the_bytes_and_returns_a_normal_tensor(tiny):
    seeds = seeds_from_ints([3, 4, 5], tiny.seed_shape)
    images = tiny.generate(seeds, 1, 4, 2.0)
    assert torch.equal(images, _no_grad_generate(tiny, seeds, 1, 4, 2.0))
    assert not images.is_inference() and not images.requires_grad
    w = torch.tensor(2.0, requires_grad=True)
    (images * w).sum().backward()  # an inference tensor could not be saved for this backward pass
    assert w.grad is not None
    inverted = tiny.invert(images, 1, 4)
    assert not inverted.is_inference() and inverted.shape == seeds.shape


def test_guided_sampling_batches_both_halves_in_one_forward(tiny):
    calls = []
    tiny.unet.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    tiny.generate(seeds_from_ints([1, 2, 3], tiny.seed_shape), 0, 4, 2.0)
    assert calls == [6] * 4  # one forward of 2N per step: conditional and unconditional halves together


def test_compile_is_off_by_default_and_validated(tiny, tiny_testbed_dir):
    assert tiny.compile is False
    with pytest.raises(ValueError, match="compile"):
        ss.load_model(str(tiny_testbed_dir), compile="yes")
    assert ss.load_model(str(tiny_testbed_dir), compile=True).compile is True


def test_compile_unavailable_falls_back_with_one_log_line(tiny, tiny_testbed_dir, monkeypatch, caplog):
    """Without a C++ compiler the compiled model runs the eager forward: same bytes, one warning, no failure."""
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    assert "C++ compiler" in acceleration.compile_unavailable("cpu")
    monkeypatch.setattr(torch, "compile", lambda *a, **k: pytest.fail("torch.compile called without a compiler"))
    model = ss.load_model(str(tiny_testbed_dir), compile=True)
    seeds = seeds_from_ints([7, 8], tiny.seed_shape)
    with caplog.at_level(logging.WARNING, logger="seedspace.backends"):
        images = model.generate(seeds, 0, 4, 2.0)
        model.generate(seeds, 0, 4, 2.0)
    assert torch.equal(images, tiny.generate(seeds, 0, 4, 2.0))
    lines = [r.getMessage() for r in caplog.records if "torch.compile is off" in r.getMessage()]
    assert len(lines) == 1 and "C++ compiler" in lines[0]


def test_compile_failure_falls_back_with_one_log_line(tiny, tiny_testbed_dir, monkeypatch, caplog):
    def broken(module, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("inductor exploded\nmore lines")
        return run

    monkeypatch.setattr(acceleration, "compile_unavailable", lambda device: None)
    monkeypatch.setattr(torch, "compile", broken)
    model = ss.load_model(str(tiny_testbed_dir), compile=True)
    seeds = seeds_from_ints([7, 8], tiny.seed_shape)
    with caplog.at_level(logging.WARNING, logger="seedspace.backends"):
        images = model.generate(seeds, 0, 4, 2.0)
    assert torch.equal(images, tiny.generate(seeds, 0, 4, 2.0))
    lines = [r.getMessage() for r in caplog.records if "torch.compile is off" in r.getMessage()]
    assert len(lines) == 1 and "inductor exploded" in lines[0] and "more lines" not in lines[0]


def test_compiled_path_gets_tensor_timesteps_channels_last_and_a_copy(tiny, tiny_testbed_dir, monkeypatch):
    """The compiled module is a channels-last copy (the eager UNet keeps its format) called with tensor timesteps
    (an int would be baked into the graph: one compilation per step); gradients take the eager UNet."""
    seen = []

    def fake_compile(module, **kwargs):
        assert kwargs["options"] == acceleration.COMPILE_OPTIONS and kwargs["dynamic"] is False

        def run(x, t, class_labels=None):
            seen.append((torch.is_tensor(t), x.is_contiguous(memory_format=torch.channels_last)))
            return module(x, t, class_labels=class_labels)
        return run

    monkeypatch.setattr(acceleration, "compile_unavailable", lambda device: None)
    monkeypatch.setattr(torch, "compile", fake_compile)
    model = ss.load_model(str(tiny_testbed_dir), compile=True)
    seeds = seeds_from_ints([1, 2], tiny.seed_shape)
    images = model.generate(seeds, 0, 4, 2.0)
    assert seen == [(True, True)] * 4
    assert model.unet.conv_in.weight.is_contiguous()  # the eager module is untouched
    torch.testing.assert_close(images, tiny.generate(seeds, 0, 4, 2.0), atol=BATCH_ATOL, rtol=0)
    x = seeds.clone().requires_grad_(True)
    model.generate_x0(x, 0, 2, 2.0).sum().backward()  # with gradients: the eager forward, not the compiled one
    assert len(seen) == 4 and x.grad is not None


def test_compile_is_recorded_and_replayed(tiny, tiny_testbed_dir):
    from seedspace.cli.common import load_from_params
    from seedspace.runs.records import check_run_parameters
    from seedspace.runs.writers import run_parameters

    eager = run_parameters(tiny, str(tiny_testbed_dir), {"class": 0}, 4, 2.0, "float32", 2)
    assert "compile" not in eager  # records of eager runs are as before
    compiled_model = ss.load_model(str(tiny_testbed_dir), compile=True)
    params = run_parameters(compiled_model, str(tiny_testbed_dir), {"class": 0}, 4, 2.0, "float32", 2)
    assert params["compile"] is True
    assert load_from_params(params).compile is True and load_from_params(eager).compile is False
    with pytest.raises(ValueError, match="compile"):
        check_run_parameters("interpolate", {**params, "seeds": [{"int": 1}, {"int": 2}], "compile": "yes"}, "run.json")


def test_the_compile_flag_is_recorded_and_regenerate_replays_it(tiny_testbed_dir, tmp_path, monkeypatch):
    """``--compile`` on the command line: the model takes the compiled path (torch.compile stood in for by the
    module itself, so the test costs no compilation), run.json records it, and regenerate replays it."""
    import json

    from seedspace.cli.main import main

    compiled = []
    monkeypatch.setattr(acceleration, "compile_unavailable", lambda device: None)
    monkeypatch.setattr(torch, "compile", lambda module, **options: compiled.append(module) or module)
    out = tmp_path / "run"
    assert main(["interpolate", "--seeds", "1,2", "--frames", "2", "--steps", "2", "--class", "0", "--compile",
                 "--model", str(tiny_testbed_dir), "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "run.json").read_text())["parameters"]["compile"] is True and len(compiled) == 1
    assert main(["regenerate", str(out / "frames" / "frame000001.png"), "--out", str(tmp_path / "again.png"),
                 "--check", "--quiet"]) == 0
    assert len(compiled) == 2  # the regenerating process compiled too
