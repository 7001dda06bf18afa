"""The sampler room: every scheduler solves an exactly known ODE, DDIM stays the default, gradients through the
schedulers match finite differences, inversion per model kind, and bad scheduler names are one-line errors."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

import seedspace as ss
from seedspace.backends import sampling
from seedspace.backends.base import seeds_from_ints
from seedspace.backends.ddim import ddim_sample
from seedspace.testbed.train import SCHEDULER_CONFIG
from tiny_models import BATCH_ATOL

VP_SCHEDULERS = ("ddim", "dpmpp-2m", "euler", "heun", "unipc", "deis")


def _gaussian_vp_model(std: float):
    """A stand-in model whose noise predictor is exact for data ~ N(0, std^2 I), at any (fractional) timestep:
    eps(x, t) = sqrt(1 - abar) x / (std^2 abar + 1 - abar), abar from the linearly interpolated sigma table."""
    abar = DDPMScheduler(**SCHEDULER_CONFIG).alphas_cumprod.double()
    sigmas = ((1 - abar) / abar).sqrt().numpy()

    def eps(x, t):
        sigma = float(np.interp(float(t), np.arange(len(sigmas)), sigmas))
        a = 1 / (1 + sigma ** 2)
        return (1 - a) ** 0.5 * x / (std ** 2 * a + 1 - a)

    return SimpleNamespace(name="gaussian", prediction_type="epsilon", alphas_cumprod=abar,
                           scheduler_config=sampling.schedule_config(abar), timestep_options=lambda steps: {},
                           noise_predictor=lambda c, g: eps, model_prediction=lambda c, g: eps)


def _gaussian_flow_model(std: float):
    """A stand-in flow model with the exact velocity for data ~ N(0, std^2 I): x_s = (1 - s) x_0 + s eps,
    v(x, s) = x (s - (1 - s) std^2) / ((1 - s)^2 std^2 + s^2), s = t / 1000."""
    def velocity(x, t):
        s = float(t) / 1000
        return x * (s - (1 - s) * std ** 2) / ((1 - s) ** 2 * std ** 2 + s ** 2)

    config = dict(FlowMatchEulerDiscreteScheduler(shift=3.0).config)
    return SimpleNamespace(name="gaussian-flow", prediction_type="flow", scheduler_config=config,
                           timestep_options=lambda steps: {}, model_prediction=lambda c, g: velocity)


@pytest.mark.parametrize("name", VP_SCHEDULERS)
def test_every_scheduler_solves_the_gaussian_ode(name):
    """For N(0, s^2) data the probability-flow ODE keeps x_t / sqrt(s^2 abar_t + 1 - abar_t) constant, so x_0 is
    s x_T / sqrt(s^2 abar_T + 1 - abar_T): each sampler converges to it; the higher-order ones faster."""
    std = 0.5
    model = _gaussian_vp_model(std)
    seeds = torch.randn(4, 64, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    abar_T = float(model.alphas_cumprod[-1])
    exact = std * seeds / (std ** 2 * abar_T + 1 - abar_T) ** 0.5
    errors = {steps: float((sampling.sample(model, seeds, [None], steps, 1.0, name) - exact).norm() / exact.norm())
              for steps in (5, 20, 50, 100)}
    assert errors[100] < 0.035 and errors[5] > errors[20] > errors[100]
    if name not in ("ddim", "euler"):  # second order and up
        assert errors[50] < 0.015
    if name == "euler":  # Euler in sigma = sqrt((1 - abar) / abar) is DDIM
        ddim = sampling.sample(model, seeds, [None], 20, 1.0, "ddim")
        torch.testing.assert_close(sampling.sample(model, seeds, [None], 20, 1.0, "euler"), ddim, rtol=1e-4, atol=1e-5)


def test_flow_euler_samples_and_inverts_the_gaussian_ode():
    """Flow Euler reaches x_0 = s x_1; reverse-Euler inversion round-trips, better with more steps."""
    std = 0.5
    model = _gaussian_flow_model(std)
    x0 = std * torch.randn(8, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    errors = {}
    for steps in (20, 50, 100):
        seeds = sampling.invert(model, x0, [None], steps, 1.0)
        back = sampling.sample(model, seeds, [None], steps, 1.0)
        errors[steps] = float((back - x0).norm() / x0.norm())
    assert errors[100] < errors[50] < errors[20] < 0.08 and errors[100] < 0.015
    seeds = sampling.invert(model, x0, [None], 100, 1.0)
    assert float((seeds - x0 / std).norm() / (x0 / std).norm()) < 0.03  # the exact seed of x_0 is x_0 / s
    with pytest.raises(ValueError, match="does not fit"):
        sampling.invert(model, x0, [None], 10, 1.0, "ddim")


def test_flow_heun_samples_and_inverts_to_second_order():
    """Reverse Heun + the Heun sampler round-trip the Gaussian ODE to second order: far better than Euler both ways
    at equal steps and at equal network evaluations (Heun at s steps costs 2 s - 1 each way); the seed it finds is
    the exact one. Reverse Heun with the Euler sampler is worse than Euler both ways (the errors no longer cancel)."""
    std = 0.5
    model = _gaussian_flow_model(std)
    x0 = std * torch.randn(8, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def roundtrip(steps, inversion, sampler):
        seeds = sampling.invert(model, x0, [None], steps, 1.0, inversion)
        back = sampling.sample(model, seeds, [None], steps, 1.0, sampler)
        return float((back - x0).norm() / x0.norm()), float((seeds - x0 / std).norm() / (x0 / std).norm())

    heun = {steps: roundtrip(steps, "flow-heun", "flow-heun") for steps in (10, 20, 50)}
    assert heun[20][0] < heun[10][0] / 3 and heun[50][0] < 1e-3 and heun[50][1] < 1e-3
    assert heun[50][0] < roundtrip(99, "flow-euler", "flow-euler")[0] / 20  # equal NFE: 99 each way
    assert roundtrip(50, "flow-heun", "flow-euler")[0] > roundtrip(50, "flow-euler", "flow-euler")[0]
    assert sampling.network_evaluations(model, "flow-heun", 50) == 99
    assert sampling.network_evaluations(model, "flow-heun", 50, inversion=True) == 99
    assert sampling.network_evaluations(model, "flow-euler", 50, inversion=True) == 50
    calls = []
    velocity = model.model_prediction(None, 1.0)
    model.model_prediction = lambda c, g: lambda x, t: calls.append(t) or velocity(x, t)
    sampling.invert(model, x0, [None], 7, 1.0, "flow-heun")
    sampling.sample(model, x0, [None], 7, 1.0, "flow-heun")
    assert len(calls) == 2 * 13
    shifted = _gaussian_flow_model(std)
    shifted.timestep_options = lambda steps: {"mu": 0.8}  # a resolution shift, as Flux and SD3.5 use
    for run in (sampling.invert, sampling.sample):
        with pytest.raises(ValueError, match="'flow-heun' does not fit gaussian-flow"):
            run(shifted, x0, [None], 10, 1.0, "flow-heun")


def test_network_evaluations_count_the_network_calls(tiny_testbed_dir):
    """NFE of each diffusion sampler = the guided network calls it makes: Heun 2 s - 1, the others s."""
    model = ss.load_model(str(tiny_testbed_dir))
    seeds = seeds_from_ints([3], model.seed_shape)
    predict = model.model_prediction  # the guided network; noise_predictor calls it too
    for name in VP_SCHEDULERS:
        for steps in (1, 4, 7):
            calls = []
            model.model_prediction = lambda c, g: (lambda f: lambda x, t: calls.append(t) or f(x, t))(predict(c, g))
            model.generate_x0(seeds, 0, steps, 2.0, scheduler=name)
            expected = 2 * steps - 1 if name == "heun" else steps
            assert sampling.network_evaluations(model, name, steps) == len(calls) == expected, (name, steps)
    assert sampling.network_evaluations(model, None, 9, inversion=True) == 9
    with pytest.raises(ValueError, match="has no inversion"):
        sampling.network_evaluations(model, "heun", 9, inversion=True)


def test_ddim_stays_the_default_and_bit_identical(tiny_testbed_dir):
    model = ss.load_model(str(tiny_testbed_dir))
    seeds = seeds_from_ints([3, 4], model.seed_shape)
    oracle = ddim_sample(model.noise_predictor([0, 1], 2.0), seeds, model.alphas_cumprod, 4)
    assert model.default_scheduler == "ddim"
    assert torch.equal(model.generate_x0(seeds, [0, 1], 4, 2.0), oracle)
    assert torch.equal(model.generate_x0(seeds, [0, 1], 4, 2.0, scheduler="ddim"), oracle)


@pytest.mark.parametrize("name", VP_SCHEDULERS[1:])
def test_schedulers_on_the_testbed(tiny_testbed_dir, name):
    """Each scheduler is deterministic and batch-independent, its last x0 estimate is near x_0, and it differs from DDIM
    (except Euler, which is DDIM in another parametrisation)."""
    model = ss.load_model(str(tiny_testbed_dir))
    seeds = seeds_from_ints([3, 4], model.seed_shape)
    seen = []
    x0 = model.generate_x0(seeds, [0, 1], 6, 2.0, scheduler=name, callback=lambda i, x, x0h: seen.append(x0h))
    assert len(seen) == (11 if name == "heun" else 6)  # Heun evaluates twice per step but the last
    assert float((seen[-1] - x0).norm() / x0.norm()) < 1e-2  # multistep solvers end near, not on, it
    images = model.generate(seeds, [0, 1], 6, 2.0, scheduler=name)
    assert torch.equal(images, model.generate(seeds, [0, 1], 6, 2.0, scheduler=name))
    torch.testing.assert_close(model.generate(seeds[1:], 1, 6, 2.0, scheduler=name)[0], images[1], atol=BATCH_ATOL,
                               rtol=0)
    ddim = model.generate_x0(seeds, [0, 1], 6, 2.0)
    distance = float((x0 - ddim).norm() / ddim.norm())
    assert distance < 1e-4 if name == "euler" else distance > 1e-3


@pytest.mark.parametrize("name", ["ddim", "euler", "dpmpp-2m"])
def test_gradients_match_finite_differences(tiny_testbed_dir, name):
    """d/dh L(seeds + h v) at h = 0 equals <grad L, v>, with per-step checkpointing (and equals the gradient
    without it); L = <x_0, w> for a fixed random w."""
    model = ss.load_model(str(tiny_testbed_dir))
    seeds = seeds_from_ints([5], model.seed_shape)
    gen = torch.Generator().manual_seed(0)
    w, v = torch.randn(seeds.shape, generator=gen), torch.randn(seeds.shape, generator=gen)

    def loss(s, checkpoint=False):
        return (model.generate_x0(s, 1, 5, 2.0, checkpoint=checkpoint, scheduler=name) * w).sum()

    grads = []
    for checkpoint in (True, False):
        s = seeds.clone().requires_grad_(True)
        loss(s, checkpoint).backward()
        grads.append(s.grad)
    assert torch.isfinite(grads[0]).all() and grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)
    h = 1e-2
    with torch.no_grad():
        numeric = float(loss(seeds + h * v) - loss(seeds - h * v)) / (2 * h)
    assert numeric == pytest.approx(float((grads[0] * v).sum()), rel=2e-3)


def test_bad_scheduler_names_are_one_line_errors(tiny_testbed_dir):
    model = ss.load_model(str(tiny_testbed_dir))
    seeds = seeds_from_ints([1], model.seed_shape)
    images = torch.rand(1, *model.image_shape)
    for name, message in [("nope", "unknown scheduler 'nope'"), ("euler-ancestral", "stochastic: it draws fresh"),
                          ("dpmpp-2m-sde", "stochastic"), ("flow-euler", "does not fit tiny-testbed")]:
        with pytest.raises(ValueError, match=message):
            model.generate(seeds, 0, scheduler=name)
    with pytest.raises(ValueError, match="'euler' has no inversion; tiny-testbed inverts with 'ddim'"):
        model.invert(images, 0, 3, scheduler="euler")
    assert model.invert(images, 0, 3, scheduler="DDIM").shape == seeds.shape
    assert sampling.scheduler_label(None) == "DDIM" and sampling.scheduler_label("dpmpp-2m") == "DPM++ 2M"
