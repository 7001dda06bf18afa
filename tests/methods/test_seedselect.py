"""SeedSelect on a tiny random testbed: loss decreases, gradients reach the seed, exact resume, input checks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import seedspace as ss
from seedspace.methods import seedselect as sel
from seedspace.backends.ddim import ddim_sample, ddim_timesteps
from seedspace.methods.seedselect import SeedSelectSettings as Settings
from seedspace.scoring.metrics import bootstrap_ci, frechet_distance

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model(tiny_testbed_dir):
    return ss.load_model(str(tiny_testbed_dir))


@pytest.fixture(scope="module")
def refs(model):
    """A reachable toy target: images the model itself makes from other seeds (in [0, 1], 8x8)."""
    return model.generate(ss.seeds_from_ints([101, 102, 103], model.seed_shape), 2)


def test_loss_goes_down_on_toy_target(model, refs):
    result = sel.seedselect(model, refs, 2, settings=Settings(init="random", steps=5, lr=0.1))
    assert len(result.history) == 6 and [h["step"] for h in result.history] == list(range(6))
    assert result.history[-1]["loss"] < 0.9 * result.history[0]["loss"]
    assert result.seed.shape == (1, *model.seed_shape) and result.image.shape == (1, 1, 8, 8)
    assert not torch.equal(result.seed, result.init_seed)
    for h in result.history:
        assert math.isclose(h["loss"], 10 * h["semantic"] + h["appearance"], rel_tol=1e-4)


def test_gradients_reach_the_seed_through_both_terms(model, refs):
    fn = model.features
    target = sel.make_target(model, [refs], fn)
    seeds = torch.randn(1, *model.seed_shape, generator=torch.Generator().manual_seed(0))
    for sw, aw in ((1.0, 0.0), (0.0, 1.0)):  # the semantic term alone, the appearance term alone
        x = seeds.clone().requires_grad_(True)
        settings = Settings(sampler_steps=4, guidance=2.0, semantic_weight=sw, appearance_weight=aw)
        loss, *_ = sel.seedselect_loss(model, x, target, 2, fn, settings)
        loss.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # the gradient (checkpointed) matches a finite difference along its own direction
    x = seeds.clone().requires_grad_(True)
    appearance_only = Settings(sampler_steps=4, guidance=2.0, semantic_weight=0.0)
    loss, *_ = sel.seedselect_loss(model, x, target, 2, fn, appearance_only)
    loss.sum().backward()
    d = x.grad / x.grad.norm()
    h = 1e-2
    with torch.no_grad():
        up = sel.seedselect_loss(model, seeds + h * d, target, 2, fn, appearance_only, checkpoint=False)[0]
        down = sel.seedselect_loss(model, seeds - h * d, target, 2, fn, appearance_only, checkpoint=False)[0]
    fd = float((up - down) / (2 * h))
    assert fd == pytest.approx(float(x.grad.norm()), rel=2e-2)


def test_x0_predictions_of_the_last_steps(model):
    """The semantic term's predictions equal x0_hat = (x - sqrt(1 - a) eps) / sqrt(a) at each step."""
    seeds = torch.randn(2, *model.seed_shape, generator=torch.Generator().manual_seed(1))
    x0, preds = sel.x0_predictions(model, seeds, 1, Settings(sampler_steps=4, guidance=2.0), checkpoint=False)
    assert len(preds) == 3 and torch.equal(preds[-1], x0)
    ts = ddim_timesteps(model.alphas_cumprod.numel(), 4)
    states = []
    eps = model.noise_predictor([1, 1], 2.0)
    ddim_sample(eps, seeds, model.alphas_cumprod, 4, callback=lambda i, x, x0_hat: states.append(x))
    x_in, t = states[-3], ts[-2]  # the input of the second-to-last step
    a = model.alphas_cumprod[t].float()
    expected = (x_in - (1 - a).sqrt() * eps(x_in, t)) / a.sqrt()
    torch.testing.assert_close(preds[1], expected, rtol=1e-3, atol=1e-3)


def test_resume_continues_exactly(model, refs, tmp_path):
    full = sel.seedselect(model, refs, 2, settings=Settings(init="random", steps=4), out_dir=tmp_path / "a")
    sel.seedselect(model, refs, 2, settings=Settings(init="random", steps=2), out_dir=tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").glob("step_*.safetensors")) == [f"step_{i:04d}.safetensors" for i in range(3)]
    resumed = sel.seedselect(model, refs, 2, settings=Settings(init="random", steps=4), out_dir=tmp_path / "b",
                             resume=True)
    torch.testing.assert_close(resumed.seed, full.seed, rtol=0, atol=1e-6)
    assert [h["step"] for h in resumed.history] == list(range(5))
    assert resumed.losses == pytest.approx(full.losses, rel=1e-5)
    torch.testing.assert_close(resumed.init_seed, full.init_seed)
    saved = json.loads((tmp_path / "b" / "history.json").read_text())
    assert [h["step"] for h in saved["history"]] == list(range(5))
    assert (tmp_path / "b" / "step_0004.png").is_file()
    step = sel.load_step(tmp_path / "b")
    assert int(step["step"][0]) == 4 and float(step["adamw_step"][0]) == 4.0
    torch.testing.assert_close(step["seeds"], full.seed)
    # a different setting is refused on resume; an existing run is not silently overwritten
    with pytest.raises(ValueError, match="lr"):
        sel.seedselect(model, refs, 2, settings=Settings(init="random", steps=5, lr=0.05), out_dir=tmp_path / "b",
                       resume=True)
    with pytest.raises(ValueError, match="reference images differ"):
        sel.seedselect(model, refs.flip(0)[:2], 2, settings=Settings(init="random", steps=5), out_dir=tmp_path / "b",
                       resume=True)
    with pytest.raises(ValueError, match="already holds"):
        sel.seedselect(model, refs, 2, settings=Settings(init="random", steps=1), out_dir=tmp_path / "b")
    assert not list(tmp_path.glob("b/.*tmp*"))  # atomic writes leave no temporary files


def test_references_from_a_folder(model, refs, tmp_path):
    from seedspace.outputs import save_png, to_uint8

    for i, image in enumerate(to_uint8(refs)):
        save_png(tmp_path / f"ref{i}.png", image)
    (tmp_path / "notes.txt").write_text("not an image")
    (loaded,) = sel.reference_sets(model, tmp_path)
    assert loaded.shape == refs.shape
    torch.testing.assert_close(loaded, refs, atol=1 / 255, rtol=0)  # 8-bit round trip


def test_bad_input_gives_clear_errors(model, refs):
    with pytest.raises(ValueError, match="no reference images"):
        sel.seedselect(model, None, 2)
    with pytest.raises(ValueError, match="no reference images"):
        sel.seedselect(model, [], 2)
    with pytest.raises(ValueError, match="no reference images"):
        sel.seedselect(model, torch.zeros(0, 1, 8, 8), 2)
    with pytest.raises(ValueError, match="at least 2 reference images"):
        sel.seedselect(model, refs[:1], 2)
    with pytest.raises(ValueError, match="at least 2 reference images"):
        sel.seedselect(model, refs[0], 2)
    with pytest.raises(ValueError, match="mismatched sizes"):
        sel.seedselect(model, [refs[0], torch.rand(1, 16, 16)], 2)
    with pytest.raises(ValueError, match="model makes 1x8x8"):
        sel.seedselect(model, torch.rand(3, 1, 32, 32), 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sel.seedselect(model, refs * 2 - 1, 2)
    with pytest.raises(ValueError, match="class must be in"):
        sel.seedselect(model, refs, 7)
    with pytest.raises(ValueError, match="unknown init"):
        sel.seedselect(model, refs, 2, settings=Settings(init="centre"))
    with pytest.raises(ValueError, match="init seeds must have shape"):
        sel.seedselect(model, refs, 2, settings=Settings(init=torch.zeros(1, 3, 3)))
    with pytest.raises(ValueError, match="steps"):
        sel.seedselect(model, refs, 2, settings=Settings(steps=-1))
    with pytest.raises(ValueError, match="image folder"):
        sel.seedselect(model, "/nonexistent/folder", 2)


@pytest.mark.parametrize("init", ["nao-centroid", "cog-centroid", "nao-paths"])
def test_centroid_initialisations(model, refs, init):
    result = sel.seedselect(model, refs, 2, settings=Settings(init=init, steps=1))
    assert result.init_seed.shape == (1, *model.seed_shape) and torch.isfinite(result.init_seed).all()
    inverted = model.invert(refs, 2)
    if init != "nao-paths":
        expected = ss.centroid(inverted.double(), method=init.split("-")[0]).reshape(1, *model.seed_shape)
        torch.testing.assert_close(result.init_seed, expected.float(), rtol=1e-4, atol=1e-4)
    else:  # the best-scoring candidate: never worse than the NAO centroid itself
        centroid = sel.seedselect(model, refs, 2, settings=Settings(init="nao-centroid", steps=0))
        assert result.history[0]["loss"] <= centroid.history[0]["loss"] + 1e-5


def test_a_model_without_features_needs_a_feature_fn(tiny_testbed_dir, refs, tmp_path, monkeypatch):
    from tiny_models import tiny_pixel_unet

    tiny_pixel_unet().save_pretrained(tmp_path / "pixel" / "unet", safe_serialization=True)
    pixel = ss.load_model(str(tmp_path / "pixel"))
    monkeypatch.delenv("SEEDSPACE_CLIP", raising=False)
    with pytest.raises(ValueError, match="has no built-in feature extractor: pass feature_fn"):
        sel.seedselect(pixel, refs, 2, settings=Settings(init="random", steps=1))
    result = sel.seedselect(pixel, refs, 2, settings=Settings(init="random", steps=1, guidance=1.0),
                            feature_fn=lambda images: images.flatten(1))
    assert len(result.history) == 2 and torch.isfinite(result.seed).all()


def test_import_seedspace_loads_no_application():
    import subprocess
    import sys

    code = ("import sys, seedspace as ss; before = sorted(m for m in sys.modules if m.startswith(('seedspace.methods', 'seedspace.evaluation', 'seedspace.runs'))); "
            "ss.seedselect, ss.SeedSelectSettings; print(before, 'seedspace.methods.seedselect' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "[] True"


def test_batched_seeds_are_independent_runs(model, refs):
    other = refs.flip(0)[:2]
    batched = sel.seedselect(model, [refs, other], [2, 1], settings=Settings(init="random", seed=[5, 6], steps=3))
    alone = [sel.seedselect(model, r, c, settings=Settings(init="random", seed=s, steps=3))
             for r, c, s in ((refs, 2, 5), (other, 1, 6))]
    torch.testing.assert_close(batched.seed, torch.cat([a.seed for a in alone]), rtol=1e-4, atol=1e-4)
    assert batched.history[-1]["losses"] == pytest.approx([a.history[-1]["loss"] for a in alone], rel=1e-3)


def test_feature_fn_pluggable_and_clip_folder(model, refs, tmp_path):
    calls = []

    def feats(images):
        calls.append(images.shape)
        return F.avg_pool2d(images, 2).flatten(1)

    sel.seedselect(model, refs, 2, settings=Settings(init="random", steps=1), feature_fn=feats)
    assert calls and calls[-1][1:] == (1, 8, 8)
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    torch.manual_seed(0)
    CLIPVisionModelWithProjection(CLIPVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                   num_attention_heads=2, image_size=16, patch_size=8,
                                                   projection_dim=8)).save_pretrained(tmp_path / "clip")
    fn = sel.clip_feature_fn(tmp_path / "clip")
    x = refs.clone().requires_grad_(True)
    out = fn(x)
    assert out.shape == (3, 8)
    out.sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="not a CLIP folder"):
        sel.clip_feature_fn(tmp_path)


def test_metrics():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, a + 2.0) == pytest.approx(12.0, rel=1e-6)
    small, big = rng.normal(size=(5, 20)), rng.normal(size=(60, 20)) + 0.3
    from seedspace.scoring.metrics import gaussian_frechet_distance

    exact = gaussian_frechet_distance(small.mean(0), np.cov(small, rowvar=False), big.mean(0), np.cov(big, rowvar=False))
    assert frechet_distance(small, big) == pytest.approx(exact, rel=1e-5)
    with pytest.raises(ValueError, match="at least 2 samples"):
        frechet_distance(a[:1], a)
    mean, lo, hi = bootstrap_ci(rng.normal(1.0, 1.0, size=200))
    assert lo < mean < hi and lo < 1.0 < hi
    assert bootstrap_ci([3.0]) == (3.0, 3.0, 3.0)
    assert all(math.isnan(v) for v in bootstrap_ci([]))


def test_cli_seedselect_and_resume(tiny_testbed_dir, tmp_path):
    from PIL import Image

    from seedspace.cli.main import main

    refs = tmp_path / "refs"
    refs.mkdir()
    gen = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(gen.integers(0, 256, (8, 8), dtype=np.uint8)).save(refs / f"r{i}.png")
    out = tmp_path / "run"
    base = ["seedselect", "--model", str(tiny_testbed_dir), "--class", "2", "--quiet"]
    assert main(base + ["--images", str(refs), "--init", "random", "--opt-steps", "2", "--out", str(out)]) == 0
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["result"]["steps"] == 2
    assert (out / "steps" / "step_0002.safetensors").is_file() and (out / "grid.png").is_file()
    assert main(["seedselect", "--resume", str(out), "--opt-steps", "3", "--quiet"]) == 0
    assert (out / "steps" / "step_0003.png").is_file()
    assert json.loads((out / "run.json").read_text())["result"]["steps"] == 3
    assert main(base + ["--images", str(refs / "r0.png")]) == 2  # one image: a clear one-line error
    assert main(base + ["--images", str(tmp_path / "missing")]) == 2


def test_report_seedselect_quick(tiny_testbed_dir, tmp_path):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "report_seedselect.py"
    spec = importlib.util.spec_from_file_location("report_seedselect", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "r"
    module.main(["--quick", "--unconditional", "--model", str(tiny_testbed_dir), "--out", str(out),
                 "--inits", "random", "nao-centroid"])
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["guidance"] == 1.0 and results["config"]["unconditional"]
    for init in ("random", "nao-centroid"):
        s = results["summary"][init]
        assert s["n"] == 2 and len(s["accuracy"]) == 4 and len(s["loss_mean"]) == 4
        assert all(0 <= m <= 1 for m, _, _ in s["accuracy"])
    report = (out / "report.md").read_text()
    assert "Condition: none" in report and "encoder" in report and "## Verdict" in report
    (paired,) = results["paired"]  # nao-centroid vs random on the same runs
    assert (paired["a"], paired["b"], paired["n"]) == ("nao-centroid", "random", 2)
    assert set(paired["steps"]) == {"0", "1", "3"} and "## Paired differences" in report
    assert (out / "accuracy_vs_step.png").stat().st_size > 1000


def test_nao_initialisations_follow_the_prior_and_record_it(model, refs, tmp_path):
    """prior= (or settings.prior) is the NAO centroid's and paths' norm prior; history.json records it; a resume
    under another prior is refused; 'chi' is the default itself."""
    inverted = model.invert(refs, 2).double()
    chi = sel.seedselect(model, refs, 2, settings=Settings(init="nao-centroid", steps=0))
    scaled = sel.seedselect(model, refs, 2, settings=Settings(init="nao-centroid", steps=1), prior="scaled-chi:0.8",
                            out_dir=tmp_path / "run")
    expected = ss.centroid(inverted, prior="scaled-chi:0.8").reshape(1, *model.seed_shape).float()
    torch.testing.assert_close(scaled.init_seed, expected, rtol=1e-4, atol=1e-4)
    assert (scaled.init_seed - chi.init_seed).norm() > 1e-2 * chi.init_seed.norm()
    assert scaled.config["prior"] == {"family": "scaled-chi", "d": 64, "scale": 0.8} and "prior" not in chi.config
    assert json.loads((tmp_path / "run" / "history.json").read_text())["config"]["prior"]["scale"] == 0.8
    with pytest.raises(ValueError, match=r"prior was \{.*\}, now unset"):
        sel.seedselect(model, refs, 2, settings=Settings(init="nao-centroid", steps=2), out_dir=tmp_path / "run",
                       resume=True)
    paths = sel.seedselect(model, refs, 2, settings=Settings(init="nao-paths", steps=0, prior="scaled-chi:0.8"))
    assert paths.config["prior"]["scale"] == 0.8
    explicit_chi = sel.seedselect(model, refs, 2, settings=Settings(init="nao-centroid", steps=0), prior="chi")
    assert torch.equal(explicit_chi.init_seed, chi.init_seed) and "prior" not in explicit_chi.config
    with pytest.raises(ValueError, match="prior must be"):
        Settings(prior=0.8)
    with pytest.raises(ValueError, match="unknown prior"):
        sel.seedselect(model, refs, 2, settings=Settings(init="nao-centroid", steps=0), prior="gaussian")


def test_cli_seedselect_prior_is_recorded_and_resumes(tiny_testbed_dir, tmp_path, capsys):
    from PIL import Image

    from seedspace.cli.main import main

    refs = tmp_path / "refs"
    refs.mkdir()
    gen = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(gen.integers(0, 256, (8, 8), dtype=np.uint8)).save(refs / f"r{i}.png")
    base = ["seedselect", "--model", str(tiny_testbed_dir), "--class", "2", "--quiet", "--images", str(refs),
            "--opt-steps", "1", "--steps", "2"]
    assert main(base + ["--out", str(tmp_path / "chi")]) == 0
    assert main(base + ["--prior", "scaled-chi:0.8", "--out", str(tmp_path / "scaled")]) == 0
    params = json.loads((tmp_path / "scaled" / "run.json").read_text())["parameters"]
    assert params["prior"] == {"family": "scaled-chi", "d": 64, "scale": 0.8}
    assert "prior" not in json.loads((tmp_path / "chi" / "run.json").read_text())["parameters"]
    init = {name: load_file(str(tmp_path / name / "init.safetensors"))["seeds"] for name in ("chi", "scaled")}
    assert not torch.allclose(init["chi"], init["scaled"])
    assert main(["seedselect", "--resume", str(tmp_path / "scaled"), "--opt-steps", "2", "--quiet"]) == 0
    capsys.readouterr()
    assert main(base + ["--prior", "gaussian", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown prior" in err and len(err.splitlines()) == 1 and not (tmp_path / "bad").exists()


def test_an_out_dir_in_use_by_another_run_is_refused(model, refs, tmp_path):
    from seedspace.runs.record import folder_lock

    out = tmp_path / "steps"
    out.mkdir()
    with folder_lock(out):  # as another seedspace process would hold it
        with pytest.raises(ValueError, match="in use by another seedspace process"):
            sel.seedselect(model, refs, 2, settings=Settings(init="random", steps=1), out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]
    result = sel.seedselect(model, refs, 2, settings=Settings(init="random", steps=1), out_dir=out)
    assert result.steps == 1 and (out / "history.json").is_file()
