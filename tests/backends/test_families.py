"""Model families through diffusers (SD 1.x, SDXL, SD3, Flux) on tiny random-weight pipelines built offline:
seedspace samples exactly as the pipeline does, for every scheduler, with and without guidance; seeds are drawn
as the pipeline draws them; inversion per model kind; bad folders and schedulers are one-line errors."""

import json
import shutil

import pytest
import torch
from PIL import Image

import seedspace as ss
from seedspace.backends.base import SeedModel, seeds_from_ints
from seedspace.backends.parity import pipeline_output
from seedspace.cli.main import main

VP_SCHEDULERS = ("ddim", "dpmpp-2m", "euler", "heun", "unipc", "deis")
FAMILIES = {"sd": VP_SCHEDULERS, "sdxl": VP_SCHEDULERS, "sd3": ("flow-euler", "flow-heun"), "flux": ("flow-euler",)}
LATENT_TOLERANCE = 2e-6  # max |x0 - x0_pipeline| / max |x0|: float32 rounding (measured <= 8e-7)
IMAGE_TOLERANCE = 1e-5  # max |image - image_pipeline| on [0, 1] (measured <= 7.5e-7)


@pytest.fixture(scope="module")
def family_dirs(tiny_sd_dir, tmp_path_factory):
    from tiny_models import write_tiny_flux, write_tiny_sd3, write_tiny_sdxl

    root = tmp_path_factory.mktemp("families")
    return {"sd": tiny_sd_dir, "sdxl": write_tiny_sdxl(root), "sd3": write_tiny_sd3(root),
            "flux": write_tiny_flux(root)}


@pytest.fixture(scope="module")
def models(family_dirs):
    return {name: ss.load_model(str(folder)) for name, folder in family_dirs.items()}


@pytest.mark.parametrize("family,scheduler", [(f, s) for f, names in FAMILIES.items() for s in names])
def test_parity_with_the_pipeline(models, family, scheduler):
    """model.generate_x0 / generate equal the pipeline's own output for latents = the same seeds, with the same
    scheduler, with and without guidance; and guidance and the scheduler do change the result."""
    model = models[family]
    seeds = seeds_from_ints([42, 7], model.seed_shape)
    results = {}
    for guidance in (1.0, 5.0):
        x0 = model.generate_x0(seeds, "a cat", 4, guidance, scheduler=scheduler)
        reference = pipeline_output(model, seeds, "a cat", 4, guidance, scheduler, latents=True)
        assert float((x0 - reference).abs().max() / reference.abs().max()) < LATENT_TOLERANCE
        images = model.generate(seeds, "a cat", 4, guidance, scheduler=scheduler)
        reference_images = pipeline_output(model, seeds, "a cat", 4, guidance, scheduler)
        assert images.shape == reference_images.shape == (2, *model.image_shape)
        assert float((images - reference_images).abs().max()) < IMAGE_TOLERANCE
        results[guidance] = x0
    assert float((results[1.0] - results[5.0]).abs().max() / results[1.0].abs().max()) > 100 * LATENT_TOLERANCE
    if scheduler in ("dpmpp-2m", "heun"):  # the scheduler reaches the pipeline: another one samples otherwise
        other = model.generate_x0(seeds, "a cat", 4, 5.0, scheduler="ddim")
        assert float((other - results[5.0]).abs().max() / other.abs().max()) > 100 * LATENT_TOLERANCE


@pytest.mark.parametrize("family", FAMILIES)
def test_seed_integers_are_drawn_as_the_pipeline_draws_them(models, family):
    """Seed 42 in seedspace is generator=torch.Generator('cpu').manual_seed(42) in the pipeline (batch of one)."""
    model = models[family]
    pipe = model.pipe
    pipe.scheduler = ss.backends.sampling.make_scheduler(model.default_scheduler, model.scheduler_config,
                                                         model.prediction_type)
    options = {} if family == "flux" else {"negative_prompt": None}
    reference = pipe("a cat", height=model.height, width=model.width, num_inference_steps=3, guidance_scale=5.0,
                     generator=torch.Generator("cpu").manual_seed(42), output_type="pt", **options).images
    images = model.generate(seeds_from_ints([42], model.seed_shape), "a cat", 3, 5.0)
    assert float((images - reference).abs().max()) < 1e-3  # float64 vs float32 DDIM levels; another seed: > 0.1
    other = model.generate(seeds_from_ints([43], model.seed_shape), "a cat", 3, 5.0)
    assert float((other - reference).abs().max()) > 0.05


@pytest.mark.parametrize("family", FAMILIES)
def test_family_protocol_and_inversion(models, family):
    model = models[family]
    assert isinstance(model, SeedModel) and model.conditioning == "prompt"
    flow = family in ("sd3", "flux")
    assert model.default_scheduler == ("flow-euler" if flow else "ddim")
    assert model.image_shape == (3, 16, 16) and model.seed_shape[1:] == (8, 8)
    seeds = seeds_from_ints([1, 2], model.seed_shape)
    images = model.generate(seeds, "a cat", 3)
    inverted = model.invert(images, "a cat", 3)
    assert inverted.shape == seeds.shape and torch.isfinite(inverted).all()
    # inversion is the sampler's inverse: re-encoding what generate_x0 produced comes back near the seeds
    x0 = model.generate_x0(seeds, "a cat", 20, model.inversion_guidance)
    again = ss.backends.sampling.invert(model, x0, ["a cat"] * 2, 20, model.inversion_guidance)
    assert float((again.cpu() - seeds).norm() / seeds.norm()) < (0.5 if flow else 0.2)
    wrong = "euler" if flow else "flow-euler"
    with pytest.raises(ValueError, match=f"scheduler '{wrong}' does not fit"):
        model.generate(seeds, "a cat", 3, scheduler=wrong)
    if family == "flux":  # Flux shifts its schedule by resolution, which diffusers' flow-matching Heun cannot
        with pytest.raises(ValueError, match="'flow-heun' does not fit"):
            model.generate(seeds, "a cat", 3, scheduler="flow-heun")
    if family == "sd3":  # reverse Heun inverts the Heun sampler closer than reverse Euler inverts Euler
        again_heun = ss.backends.sampling.invert(model, model.generate_x0(seeds, "a cat", 20, model.inversion_guidance,
                                                                          scheduler="flow-heun"),
                                                 ["a cat"] * 2, 20, model.inversion_guidance, "flow-heun")
        assert float((again_heun.cpu() - seeds).norm()) < float((again.cpu() - seeds).norm())
    no_inverse = "flow-euler" if flow else "dpmpp-2m"
    if not flow:
        with pytest.raises(ValueError, match="'dpmpp-2m' has no inversion"):
            model.invert(images, "a cat", 3, scheduler=no_inverse)


def test_flux_seeds_are_unpacked_latents(models):
    model = models["flux"]
    assert model.seed_shape == (model.vae.config.latent_channels, 8, 8)
    assert model.denoiser.config.in_channels == 4 * model.seed_shape[0]  # packed 2x2 patches


def test_bad_model_folders(family_dirs, tmp_path):
    broken = shutil.copytree(family_dirs["sd3"], tmp_path / "no_vae")
    shutil.rmtree(broken / "vae")
    with pytest.raises(ValueError, match="lacks the component folder\\(s\\) vae"):
        ss.load_model(str(broken))
    other = shutil.copytree(family_dirs["sd"], tmp_path / "kandinsky")
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "KandinskyPipeline"}))
    with pytest.raises(ValueError, match="KandinskyPipeline is not supported; seedspace runs StableDiffusionPipeline"):
        ss.load_model(str(other))


@pytest.mark.parametrize("family", FAMILIES)
def test_cli_on_each_family(family_dirs, family, tmp_path, capsys):
    """interpolate with a named scheduler records it, its frames regenerate byte for byte, and invert runs."""
    scheduler = "flow-euler" if family in ("sd3", "flux") else "dpmpp-2m"
    out = tmp_path / "run"
    assert main(["interpolate", "--model", str(family_dirs[family]), "--seeds", "1,2", "--frames", "2", "--steps",
                 "2", "--prompt", "a cat", "--scheduler", scheduler, "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "run.json").read_text())["parameters"]["scheduler"] == scheduler
    frame = out / "frames" / "frame000001.png"
    assert "Sampler: " + ss.backends.sampling.scheduler_label(scheduler) in Image.open(frame).text["parameters"]
    assert main(["regenerate", str(frame), "--out", str(tmp_path / "r.png"), "--check", "--quiet"]) == 0
    assert main(["invert", str(frame), "--model", str(family_dirs[family]), "--steps", "2",
                 "--prompt", "a cat", "--out", str(tmp_path / "inv"), "--quiet"]) == 0
    wrong = "euler" if family in ("sd3", "flux") else "euler-ancestral"
    assert main(["interpolate", "--model", str(family_dirs[family]), "--seeds", "1,2", "--frames", "2", "--prompt",
                 "a cat", "--scheduler", wrong, "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert not (tmp_path / "bad").exists()
    message = "is stochastic" if wrong == "euler-ancestral" else "does not fit"
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith(f"seedspace: error: scheduler '{wrong}' ") and message in last_line


@pytest.mark.parametrize("family", FAMILIES)
def test_pipeline_latents_are_what_the_pipeline_draws_for_a_seed(models, family):
    """ss.pipeline_latents(pipe, ss.seeds_from_ints([s], ss.latent_shape(pipe, H, W))) as latents= gives the
    pipeline's own output for generator=torch.Generator('cpu').manual_seed(s): shape, packing (Flux) and the
    init_noise_sigma convention agree with diffusers'."""
    model = models[family]
    pipe = model.pipe
    options = dict(height=model.height, width=model.width, num_inference_steps=2, guidance_scale=5.0,
                   output_type="latent", **({} if family == "flux" else {"negative_prompt": None}))
    drawn = pipe("a cat", generator=torch.Generator("cpu").manual_seed(42), **options).images
    shape = ss.latent_shape(pipe, model.height, model.width)
    assert shape == tuple(model.seed_shape)
    given = pipe("a cat", latents=ss.pipeline_latents(pipe, seeds_from_ints([42], shape)), **options).images
    assert torch.equal(drawn, given)
    with pytest.raises(ValueError, match="latents for"):
        ss.pipeline_latents(pipe, torch.zeros(1, shape[0] + 1, *shape[1:]))
    with pytest.raises(ValueError, match="multiples of"):
        ss.latent_shape(pipe, model.height + 1, model.width)
    with pytest.raises(ValueError, match="got 0 x 0"):  # 0 is a size, not "the default"
        ss.latent_shape(pipe, 0, 0)
    with pytest.raises(ValueError, match="height must be an integer"):
        ss.latent_shape(pipe, 512.5, model.width)
    with pytest.raises(ValueError, match="seeds must be a tensor"):
        ss.pipeline_latents(pipe, None)
