"""Inversion round trips: image -> seed (the sampler's inversion) -> image (the same sampler), and how close the
regenerated image comes back (PSNR). Both directions run at the model's inversion guidance (1: no classifier-free
guidance; Flux: its distilled guidance), the inversion convention of :meth:`~seedspace.backends.base.SeedModel.invert`.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import torch

from ..backends.base import Condition
from ..backends.sampling import INVERTIBLE, check_inversion, network_evaluations, sampler_fits
from ..scoring.metrics import image_psnr


def roundtrip(model, images: torch.Tensor, condition: Condition = None, steps: int = 50,
              scheduler: str | None = None) -> dict:
    """Invert ``images`` (N, *image_shape) in [0, 1] with the inversion of ``scheduler`` (None: the model's default:
    DDIM inversion, reverse Euler for flow models) and regenerate them with that sampler at the same steps and the
    inversion guidance. Returns {"seeds", "images", "psnr" (N,) in dB = 10 log10(1 / MSE), "norm" (N,) = |seed| /
    sqrt(d), "invert_s", "regenerate_s", "nfe" (network evaluations per image: inversion + generation),
    "scheduler", "steps", "guidance"}; ValueError for a sampler without an inversion."""
    name = check_inversion(scheduler, model.prediction_type, model.name)
    guidance = float(getattr(model, "inversion_guidance", 1.0))
    t0 = time.perf_counter()
    seeds = model.invert(images, condition, steps, scheduler=name).float().cpu()
    t1 = time.perf_counter()
    recon = model.generate(seeds, condition, steps, guidance, scheduler=name)
    t2 = time.perf_counter()
    norms = seeds.reshape(seeds.shape[0], -1).double().norm(dim=1) / math.sqrt(math.prod(model.seed_shape))
    return {"seeds": seeds, "images": recon, "psnr": image_psnr(recon, images), "norm": norms.numpy(),
            "invert_s": t1 - t0, "regenerate_s": t2 - t1, "scheduler": name, "steps": int(steps), "guidance": guidance,
            "nfe": network_evaluations(model, name, steps, inversion=True) + network_evaluations(model, name, steps)}


def roundtrip_samplers(model, extra: Sequence[str] = ("flow-heun",)) -> list[str]:
    """The samplers a round-trip report measures on a model: its default (the inversion every tool uses), then each
    of ``extra`` that has an inversion and runs on the model (reverse Heun on flow models with a fixed shift)."""
    names = [check_inversion(None, model.prediction_type, model.name)]
    return names + [n for n in dict.fromkeys(extra) if n in INVERTIBLE and n not in names and sampler_fits(model, n)]
