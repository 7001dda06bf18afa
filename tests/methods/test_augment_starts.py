"""augment's seedselect starts (the paths, the NAO centroid and its neighbourhood, random seeds) and the fixed-point
inversion of the run's own sampler, on the tiny test models and an exact Gaussian noise predictor."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from seedspace import geometry, outputs
from seedspace.backends.ddim import ddim_invert, ddim_sample, gaussian_eps
from seedspace.methods.augment import AugmentSettings, augment, strategies
from seedspace.methods.augment.inversion import fixed_point_invert


def refs(k: int = 3) -> dict:
    rng = np.random.default_rng(0)
    return {f"class{c}": torch.from_numpy(rng.random((k, 1, 8, 8))).float() for c in range(3)}


@pytest.mark.parametrize("start", ["centroid", "random"])
def test_seedselect_starts_make_distinct_refined_images(tiny_testbed_dir, tmp_path, start):
    result = augment(str(tiny_testbed_dir), refs(), tmp_path / "out", per_class=4, steps=2, shard_size=4,
                     batch_size=4, strategy="seedselect", seedselect_start=start, seedselect_steps=1)
    entries = result.entries()
    assert len({outputs.read_png_pixels(result.out / e["file"]).tobytes() for e in entries}) == 12
    inits = [e["seed"]["init"] for e in entries[:4]]
    if start == "random":
        assert all(set(i) == {"int"} for i in inits) and len({i["int"] for i in inits}) == 4
    else:  # image 0 from the centroid itself, the others from its neighbourhood (t < 1/2 toward an inversion)
        assert inits[0]["from"] == "centroid" and inits[0]["t"] == 0
        assert all(i["from"] == "centroid" and 0 < i["t"] < 0.5 for i in inits[1:])


def test_the_centroid_start_is_the_nao_centroid_of_the_inversions():
    rng = np.random.default_rng(1)
    recipe = strategies.plan_recipe("seedselect", 6, 3, rng, start="centroid")
    X = torch.randn(3, 1, 4, 4)
    seeds = strategies.seeds_from_recipe("seedselect", recipe, X, (1, 4, 4), "nao", "nao")
    centre = geometry.centroid(X.double(), method="nao").float()
    assert torch.allclose(seeds[0], centre, atol=1e-5)
    assert len(torch.unique(seeds.reshape(6, -1), dim=0)) == 6
    assert set(recipe["source"].tolist()) == {-1}  # all on the geodesics from the centroid


@pytest.mark.parametrize("options,message", [
    ({"strategy": "seedselect", "seedselect_start": "nao"}, "unknown seedselect_start 'nao'"),
    ({"strategy": "paths", "seedselect_start": "random"}, "seedselect_start applies to the seedselect strategy only"),
    ({"inversion": "exact"}, "unknown inversion 'exact'"),
    ({"inversion": "fixed-point", "steps": 20, "inversion_steps": 50}, "inversion_steps \\(50\\) differs from steps"),
])
def test_bad_starts_and_inversions_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        AugmentSettings(per_class=2, **options)


class GaussianModel:
    """Data ~ N(0, 0.5^2 I): its exact noise predictor, so DDIM is an ODE solver and the only round-trip error is
    the inversion's."""

    name, prediction_type, batch_size = "gaussian", "epsilon", 4
    alphas_cumprod = (1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)).cumprod(0)  # DDPM's schedule

    def noise_predictor(self, conditions, guidance):
        return gaussian_eps(0.5, self.alphas_cumprod)

    def encode(self, images):
        return images * 2 - 1


def test_fixed_point_inversion_round_trips_where_plain_inversion_does_not():
    model = GaussianModel()
    images = torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eps = model.noise_predictor(None, 1.0)
    target = model.encode(images)
    plain = ddim_sample(eps, ddim_invert(eps, target, model.alphas_cumprod, 4), model.alphas_cumprod, 4)
    seeds = fixed_point_invert(model, images, None, 4, 1.0, iterations=20).double()
    fixed = ddim_sample(eps, seeds, model.alphas_cumprod, 4)
    plain_error, fixed_error = (plain - target).abs().max(), (fixed - target).abs().max()
    assert plain_error > 1e-2 and fixed_error < 0.02 * plain_error  # measured: 0.005 against 0.64


def test_fixed_point_inversion_refuses_a_model_without_ddim(tiny_testbed_dir, tmp_path):
    flow = SimpleNamespace(name="flowy", prediction_type="flow", alphas_cumprod=None)
    with pytest.raises(ValueError, match="inversion 'fixed-point' inverts the DDIM sampler; flowy"):
        fixed_point_invert(flow, torch.rand(1, 1, 8, 8), None, 4, 1.0)



@pytest.mark.parametrize("inversion", ["fixed-point", "ddim"])
def test_runs_of_one_loaded_model_share_inversions_and_round_trips_with_the_same_bytes(tiny_testbed_dir, tmp_path,
                                                                                       monkeypatch, inversion):
    """The long-tail benchmark's arms invert the same references many times: a loaded model remembers each class's
    inversion and round trip, keyed by everything that decides their bytes, so a second run (another strategy,
    another folder) computes neither and writes what a fresh model writes; another key computes again."""
    from seedspace.backends.loading import load_model
    from seedspace.methods.augment import inversion as inversion_module

    options = dict(per_class=3, steps=2, shard_size=3, batch_size=3, inversion=inversion,
                   **({"inversion_steps": 2} if inversion == "ddim" else {}))  # fixed-point: the sampler's steps
    model = load_model(str(tiny_testbed_dir))
    augment(model, refs(), tmp_path / "paths", strategy="paths", **options)
    calls = []
    spied = (inversion_module, "fixed_point_invert") if inversion == "fixed-point" else (model, "invert")
    original, generate = getattr(*spied), model.generate
    monkeypatch.setattr(*spied, lambda *a, **k: calls.append("invert") or original(*a, **k))
    monkeypatch.setattr(model, "generate", lambda seeds, *a: calls.append(len(seeds)) or generate(seeds, *a))
    shared = augment(model, refs(), tmp_path / "centroid", strategy="centroid", **options)
    assert calls == [3, 3, 3]  # the three classes' images only: no inversion, no round trip

    calls.clear()
    augment(model, refs(), tmp_path / "steps3", strategy="centroid", **{**options, "steps": 3})
    # the sampler's steps key the round trips (3 references per class) and the fixed-point inversion, not plain
    # DDIM inversion (its own steps: 2, as before)
    assert calls.count("invert") == (3 if inversion == "fixed-point" else 0) and calls.count(3) == 3 + 3

    monkeypatch.undo()
    fresh = augment(load_model(str(tiny_testbed_dir)), refs(), tmp_path / "fresh", strategy="centroid", **options)
    files = lambda out: {p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*"))  # noqa: E731
                         if p.is_file() and p.name not in ("run.log", ".lock")}
    assert files(shared.out) == files(fresh.out)
