"""Deterministic DDIM sampling and inversion, shared by every backend.

A backend supplies ``eps(x, t) -> predicted noise`` (guidance already applied) and the training schedule's
cumulative alphas; these functions do the rest, with gradients when asked (gradient checkpointing per step,
so memory stays flat in the number of steps).

DDIM step between noise levels s -> t (eta = 0):
    x0_hat = (x_s - sqrt(1 - abar_s) eps) / sqrt(abar_s);  x_t = sqrt(abar_t) x0_hat + sqrt(1 - abar_t) eps.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.checkpoint import checkpoint as _checkpoint

from ..progress import progress_bar

EpsFn = Callable[[torch.Tensor, int], torch.Tensor]
StepCallback = Callable[[int, torch.Tensor, torch.Tensor], None]


def ddim_timesteps(num_train_timesteps: int, steps: int) -> list[int]:
    """'Trailing' spacing: t_i = round(T - i T / steps) - 1, so sampling starts at the last training step."""
    if steps < 1 or steps > num_train_timesteps:
        raise ValueError(f"steps must be between 1 and {num_train_timesteps}, got {steps}")
    ts = [int(round(num_train_timesteps - i * num_train_timesteps / steps)) - 1 for i in range(steps)]
    return sorted(set(ts), reverse=True)


def predict_x0(x: torch.Tensor, eps: torch.Tensor, abar: torch.Tensor) -> torch.Tensor:
    """The clean-image prediction at noise level abar: x0_hat = (x - sqrt(1 - abar) eps) / sqrt(abar)."""
    return (x - (1 - abar).sqrt() * eps) / abar.sqrt()


def _step(x: torch.Tensor, eps: torch.Tensor, abar_from: torch.Tensor,
          abar_to: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One DDIM step s -> t: (x_t, the x0_hat it went through)."""
    x0 = predict_x0(x, eps, abar_from)
    return abar_to.sqrt() * x0 + (1 - abar_to).sqrt() * eps, x0


def _levels(alphas_cumprod: torch.Tensor, timesteps: list[int]) -> list[torch.Tensor]:
    """abar at each timestep, in float64; abar = 1 stands for the clean image."""
    return [alphas_cumprod[t].double() for t in timesteps]


def ddim_sample(eps: EpsFn, seeds: torch.Tensor, alphas_cumprod: torch.Tensor, steps: int = 50,
                checkpoint: bool = False, callback: StepCallback | None = None) -> torch.Tensor:
    """Integrate the DDIM ODE from x_T = seeds (unit-variance noise) to x_0; returns x_0.

    checkpoint=True recomputes each step in the backward pass (for gradients w.r.t. the seeds).
    callback(i, x, x0_hat) sees the state after step i and the clean-image prediction :func:`predict_x0` made
    on the way (the last step's x0_hat is x_0 itself).
    """
    timesteps = ddim_timesteps(alphas_cumprod.numel(), steps)
    levels = _levels(alphas_cumprod, timesteps) + [torch.ones((), dtype=torch.float64)]
    x = seeds
    for i, t in enumerate(progress_bar(timesteps, desc="denoising", leave=False)):
        def one_step(x_in, t=t, i=i):
            e = eps(x_in, t)
            return _step(x_in, e, levels[i].to(x_in.dtype), levels[i + 1].to(x_in.dtype))

        x, x0 = _checkpoint(one_step, x, use_reentrant=False) if checkpoint and torch.is_grad_enabled() else one_step(x)
        if callback is not None:
            callback(i, x, x0)
    return x


def ddim_invert(eps: EpsFn, images: torch.Tensor, alphas_cumprod: torch.Tensor, steps: int = 50) -> torch.Tensor:
    """DDIM inversion: run the ODE backwards from x_0 to x_T, evaluating eps at the level being entered
    (the usual approximation eps(x_t, t) ~ eps(x_s, t)); returns the seed x_T."""
    timesteps = ddim_timesteps(alphas_cumprod.numel(), steps)[::-1]
    levels = [torch.ones((), dtype=torch.float64)] + _levels(alphas_cumprod, timesteps)
    x = images
    for i, t in enumerate(progress_bar(timesteps, desc="inverting", leave=False)):
        x, _ = _step(x, eps(x, t), levels[i].to(x.dtype), levels[i + 1].to(x.dtype))
    return x


def gaussian_eps(data_std: float, alphas_cumprod: torch.Tensor) -> EpsFn:
    """The exact noise predictor for data ~ N(0, s^2 I): eps(x, t) = sqrt(1 - abar_t) x / (s^2 abar_t + 1 - abar_t).

    Used in tests: with it, DDIM sampling is an exact ODE solver up to discretisation error.
    """
    def eps(x: torch.Tensor, t: int) -> torch.Tensor:
        a = alphas_cumprod[t].to(x.dtype)
        return (1 - a).sqrt() * x / (data_std ** 2 * a + 1 - a)

    return eps
