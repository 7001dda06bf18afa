"""Backends: DDIM sampling/inversion, the pixel/testbed adapter, the Stable Diffusion adapter, loading."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

import seedspace as ss
from seedspace.backends.base import SeedModel, seeds_from_ints
from seedspace.backends.ddim import ddim_invert, ddim_sample, ddim_timesteps, gaussian_eps, predict_x0
from seedspace.testbed.train import make_scheduler
from tiny_models import BATCH_ATOL


def test_timesteps_trailing():
    ts = ddim_timesteps(1000, 50)
    assert ts[0] == 999 and ts[-1] == 19 and len(ts) == 50 and ts == sorted(ts, reverse=True)
    with pytest.raises(ValueError):
        ddim_timesteps(1000, 0)


@pytest.mark.parametrize("std", [0.5, 1.5])
def test_ddim_inversion_roundtrip_exact_denoiser(std):
    """With the exact denoiser of N(0, s^2 I) data, invert-then-generate reproduces the data; error shrinks with steps."""
    abar = make_scheduler().alphas_cumprod.double()
    eps = gaussian_eps(std, abar)
    x0 = std * torch.randn(64, 1, 16, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    errors = {}
    for steps in (20, 50, 200):
        seeds = ddim_invert(eps, x0, abar, steps)
        back = ddim_sample(eps, seeds, abar, steps)
        errors[steps] = float((back - x0).norm() / x0.norm())
    assert errors[200] < errors[50] < errors[20]
    assert errors[50] < 0.06 and errors[200] < 0.02
    # the inverted seeds are (close to) unit-variance Gaussian noise
    seeds = ddim_invert(eps, x0, abar, 200)
    assert abs(float(seeds.std()) - 1.0) < 0.05


def test_ddim_gradients_with_checkpointing():
    abar = make_scheduler().alphas_cumprod.double()
    w = torch.tensor(0.9, dtype=torch.float64, requires_grad=True)
    eps = gaussian_eps(1.0, abar)
    seeds = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    out = ddim_sample(lambda x, t: eps(x, t) * w, seeds, abar, 10, checkpoint=True)
    out.square().sum().backward()
    assert seeds.grad is not None and torch.isfinite(seeds.grad).all() and seeds.grad.abs().sum() > 0
    assert w.grad is not None


def test_sampler_reports_its_x0_predictions():
    """callback(i, x, x0_hat): x0_hat is predict_x0 of the step's input, the step lands on
    sqrt(abar_t) x0_hat + sqrt(1 - abar_t) eps, and the last prediction is the output."""
    abar = make_scheduler().alphas_cumprod.double()
    eps = gaussian_eps(0.7, abar)
    seeds = torch.randn(3, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    seen = []
    out = ddim_sample(eps, seeds, abar, 6, callback=lambda i, x, x0: seen.append((x, x0)))
    ts = ddim_timesteps(abar.numel(), 6)
    assert len(seen) == len(ts) and torch.equal(seen[-1][0], out) and torch.equal(seen[-1][1], out)
    x_in, t, t_next = seen[1][0], ts[2], ts[3]
    x0_hat = predict_x0(x_in, eps(x_in, t), abar[t])
    torch.testing.assert_close(seen[2][1], x0_hat)
    torch.testing.assert_close(seen[2][0], abar[t_next].sqrt() * x0_hat + (1 - abar[t_next]).sqrt() * eps(x_in, t))


def test_seeds_from_ints_deterministic():
    a = seeds_from_ints([1, 2], (4, 8, 8))
    b = seeds_from_ints([1, 2], (4, 8, 8))
    assert a.shape == (2, 4, 8, 8) and torch.equal(a, b) and not torch.equal(a[0], a[1])
    assert torch.equal(seeds_from_ints([2], (4, 8, 8))[0], a[1])
    assert seeds_from_ints([1], (3,), dtype=torch.bfloat16).dtype == torch.bfloat16
    with pytest.raises(ValueError):
        seeds_from_ints([-1], (3,))


def test_tiny_testbed_generate_and_invert(tiny_testbed_dir):
    model = ss.load_model(str(tiny_testbed_dir))
    assert isinstance(model, SeedModel) and model.seed_shape == (1, 8, 8)
    seeds = seeds_from_ints([3, 4, 5], model.seed_shape)
    images = model.generate(seeds, [0, "class2", "1"])
    assert images.shape == (3, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    again = model.generate(seeds, [0, "class2", "1"])
    assert torch.equal(images, again)  # deterministic on the CPU
    alone = model.generate(seeds[1:2], "class2")  # batch composition does not change a sample
    assert torch.allclose(alone[0], images[1], atol=BATCH_ATOL, rtol=0)
    unguided = model.generate(seeds, 0, guidance=1.0)
    assert not torch.allclose(unguided, model.generate(seeds, 0, guidance=3.0))
    inverted = model.invert(images, [0, 2, 1], steps=4)
    assert inverted.shape == seeds.shape and torch.isfinite(inverted).all()


def test_testbed_features_come_from_the_encoder_not_the_judge(tiny_testbed_dir, tmp_path):
    import shutil

    images = torch.rand(3, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    model = ss.load_model(str(tiny_testbed_dir))
    features, judged = model.features(images), model.judge_features(images)
    assert features.shape == judged.shape == (3, 128)
    torch.testing.assert_close(features, model.encoder.features(images * 2 - 1))
    assert not torch.allclose(features, judged)
    folder = shutil.copytree(tiny_testbed_dir, tmp_path / "no_encoder")
    (folder / "encoder.safetensors").unlink()
    fallback = ss.load_model(str(folder))
    assert fallback.encoder is None
    torch.testing.assert_close(fallback.features(images), judged)  # folders without an encoder use the judge


def test_unconditional_is_the_null_class(tiny_testbed_dir):
    model = ss.load_model(str(tiny_testbed_dir))
    seeds = seeds_from_ints([3, 4], model.seed_shape)
    assert model.class_index("Unconditional") == model.null_class
    unconditional = model.generate(seeds, "unconditional", guidance=1.0)
    # guidance 0 keeps only the unconditional half of classifier-free guidance, whatever the class
    assert torch.equal(unconditional, model.generate(seeds, 1, guidance=0.0))
    assert not torch.allclose(unconditional, model.generate(seeds, 1, guidance=1.0), atol=1e-3)
    model.null_class = None
    with pytest.raises(ValueError, match="no null class"):
        model.class_index("unconditional")


def test_tiny_testbed_dtypes(tiny_testbed_dir):
    seeds = seeds_from_ints([3], (1, 8, 8), dtype=torch.float16)
    for dtype in ("bfloat16", "float16"):
        model = ss.load_model(str(tiny_testbed_dir), dtype=dtype)
        images = model.generate(seeds, 1)
        assert images.dtype == torch.float32 and torch.isfinite(images).all()


def test_bad_inputs(tiny_testbed_dir):
    model = ss.load_model(str(tiny_testbed_dir))
    with pytest.raises(ValueError, match="seeds must have shape"):
        model.generate(torch.randn(1, 1, 4, 4), 0)
    with pytest.raises(ValueError, match="unknown class"):
        model.generate(torch.randn(1, 1, 8, 8), "nope")
    with pytest.raises(ValueError, match="class must be in"):
        model.generate(torch.randn(1, 1, 8, 8), 7)
    with pytest.raises(ValueError, match="class-conditional"):
        model.generate(torch.randn(1, 1, 8, 8), None)
    with pytest.raises(ValueError, match="NaN"):
        model.generate(torch.full((1, 1, 8, 8), float("nan")), 0)
    with pytest.raises(ValueError, match="does not exist"):
        ss.load_model("./no/such/model")
    with pytest.raises(ValueError, match="never downloads") as missing:
        ss.load_model("nobody/not-a-cached-model")
    assert_names_the_download_command(str(missing.value), "nobody/not-a-cached-model")


def assert_names_the_download_command(message: str, hub_id: str) -> None:
    """The uncached-hub-id error names a command the installed huggingface_hub provides (`hf`; huggingface_hub
    1.0 dropped `huggingface-cli`), with the id, in one line."""
    from importlib.metadata import distribution

    scripts = {e.name for e in distribution("huggingface_hub").entry_points if e.group == "console_scripts"}
    commands = re.findall(r"`([^`]*)`", message)
    assert commands and all(c.split()[0] in scripts for c in commands), (commands, scripts)
    assert f"`hf download {hub_id}`" in message and "\n" not in message


def test_every_backend_has_the_whole_protocol(tiny_testbed_dir, tiny_sd_dir, tmp_path):
    from tiny_models import tiny_pixel_unet

    tiny_pixel_unet(num_classes=2).save_pretrained(tmp_path / "pixel" / "unet", safe_serialization=True)
    testbed, sd = ss.load_model(str(tiny_testbed_dir)), ss.load_model(str(tiny_sd_dir))
    pixel = ss.load_model(str(tmp_path / "pixel"))  # a plain UNet2DModel folder: classes, no judge, no features
    images = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    for model in (testbed, sd, pixel):
        assert isinstance(model, SeedModel)
        torch.testing.assert_close(model.check_seeds(torch.zeros(2, *model.seed_shape).double()),
                                   torch.zeros(2, *model.seed_shape))
        with pytest.raises(ValueError, match="seeds must have shape"):
            model.check_seeds(torch.zeros(2, 7))
    assert (testbed.conditioning, pixel.conditioning, sd.conditioning) == ("class", "class", "prompt")
    assert testbed.image_shape == testbed.seed_shape == (1, 8, 8)
    assert sd.image_shape == (3, 16, 16) and sd.seed_shape == (4, 8, 8)
    assert sd.class_names is None and sd.num_classes is None and sd.null_class is None
    with pytest.raises(ValueError, match="takes text prompts"):
        sd.class_index("cat")
    assert testbed.class_index("class2") == 2 and pixel.class_index(1) == 1
    assert testbed.has_features and testbed.has_judge and list(testbed.tail_classes) == [2]
    assert testbed.fewshot(1)[0].shape == (4, 1, 32, 32) and testbed.classify(images).shape == (2, 3)
    for model in (sd, pixel):  # optional parts: absent, said beforehand, and a ValueError naming the model
        assert not model.has_features and not model.has_judge and list(model.tail_classes) == []
        with pytest.raises(ValueError, match=f"{model.name} has no built-in image feature extractor"):
            model.features(images)
        for absent in (lambda: model.judge_features(images), lambda: model.classify(images), model.fewshot):
            with pytest.raises(ValueError, match=f"{model.name} has no judge"):
                absent()


def test_decode_differentiable_passes_gradient_where_decode_clamps(tiny_testbed_dir):
    model = ss.load_model(str(tiny_testbed_dir))
    x0 = torch.tensor([[-1.5, 0.0, 1.5]]).reshape(1, 1, 1, 3).requires_grad_(True)
    out = model.decode_differentiable(x0)
    assert torch.equal(out, model.decode(x0))
    out.sum().backward()
    assert torch.equal(x0.grad.flatten(), torch.full((3,), 0.5))  # d((x + 1) / 2) / dx, clamped or not


def test_load_images(tiny_testbed_dir, tmp_path):
    model = ss.load_model(str(tiny_testbed_dir))
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "b.png")
    (tmp_path / "c.png").write_bytes(b"not an image")
    conversions: list = []
    images = model.load_images([tmp_path / "a.png", tmp_path / "b.png"], conversions=conversions)
    assert images.shape == (2, 1, 8, 8) and images[0].min() == 1 and images[1].max() == 0
    assert [c["steps"] for c in conversions] == [["colour to grey (the model is grey)", "resized 16x16 to 8x8"]]
    with pytest.raises(ValueError, match="c.png"):
        model.load_images([tmp_path / "c.png"])


def test_tiny_stable_diffusion_end_to_end(tiny_sd_dir):
    model = ss.load_model(str(tiny_sd_dir))
    assert model.seed_shape == (4, 8, 8)
    seeds = seeds_from_ints([1, 2], model.seed_shape)
    images = model.generate(seeds, ["a photo of a cat", "a dog"], steps=3)
    assert images.shape == (2, 3, 16, 16) and 0 <= images.min() and images.max() <= 1
    assert torch.equal(images, model.generate(seeds, ["a photo of a cat", "a dog"], steps=3))
    assert not torch.allclose(images[0], model.generate(seeds[:1], "a red car", steps=3)[0])
    inverted = model.invert(images, "a photo of a cat", steps=3)
    assert inverted.shape == seeds.shape and torch.isfinite(inverted).all()


def test_shipped_testbed_generates():
    model = ss.load_model()
    assert model.seed_shape == (1, 32, 32) and len(model.class_names) == 10
    image = model.generate(seeds_from_ints([0], model.seed_shape), "Trouser", steps=10)
    assert image.shape == (1, 1, 32, 32)
    assert model.classify(image).shape == (1, 10)


def test_a_model_folder_carries_its_prior(tiny_testbed_dir, tmp_path):
    """The shipped testbed has its calibrated prior; a folder without one means chi(d); a malformed or
    wrong-dimension prior file is an error naming the file, never a silent chi."""
    import shutil

    from seedspace.backends.run_prior import model_prior
    from seedspace.geometry import ChiPrior

    shipped = ss.load_model("testbed")
    assert isinstance(shipped.prior, ChiPrior) and 0.9 < shipped.prior.scale < 0.95 and shipped.prior.d == 1024
    assert model_prior(shipped) is not None and model_prior(shipped).scale == shipped.prior.scale
    folder = tmp_path / "tb"
    shutil.copytree(tiny_testbed_dir, folder)
    model = ss.load_model(str(folder))
    assert model.prior is None and model_prior(model).to_record() == ChiPrior(64).to_record()
    (folder / "prior.json").write_text('{"family": "scaled-chi", "d": 64, "scale": 0.9}')
    assert model_prior(ss.load_model(str(folder))).scale == 0.9
    for text in ('{"family": "scaled-chi", "d": 1024, "scale": 0.9}', "{not json"):
        (folder / "prior.json").write_text(text)
        with pytest.raises(ValueError, match="prior.json"):
            ss.load_model(str(folder)).prior
