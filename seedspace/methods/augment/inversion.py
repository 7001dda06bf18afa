"""The references' inversions: every class inverted (plain DDIM inversion or the fixed-point one) and each
inversion's round trip through the run's sampler checked (:func:`invert_classes`, :func:`round_trips`).

Fixed-point DDIM inversion: the seed that the model's own DDIM sampler, at the run's steps and guidance, maps back
onto the image.

Plain DDIM inversion (:meth:`~seedspace.backends.base.SeedModel.invert`) evaluates the noise at the point it
comes from (eps(x_t, t) ~ eps(x_s, t)) and runs without guidance, so a seed inverted at 20 steps comes back from
the 20-step guided sampler at about 16 dB PSNR on the testbed. Here each inversion step s <- t solves the
sampler's own step x_t = DDIM(x_s, eps(x_s, s)) for x_s by fixed-point iteration
(x_s <- sqrt(abar_s) x0_hat(x_t, e) + sqrt(1 - abar_s) e, e = eps(x_s, s), started from plain inversion's point),
with the sampler's noise predictor (the condition and classifier-free guidance the images are generated with):
where it converges, the seed decodes to the image up to the iteration's residual.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict

import torch

from ... import outputs
from ...backends import sampling
from ...backends.base import conditions_list
from ...backends.ddim import ddim_timesteps, predict_x0
from ...progress import command_bar
from ...scoring.metrics import image_psnr

FIXED_POINT_ITERATIONS = 5  # per inversion step, after plain inversion's first guess (measured: scripts/rare_roundtrip.py)
MODEL_STATE = ("batch_size", "compile", "default_scheduler", "dtype", "device")  # what a model may change between calls
MEMO_SIZE = 64  # results kept per model: a benchmark replicate's classes x conditions fit many times over

# model -> {key: result}, most recent last. The long-tail benchmark makes one augment run per class and arm, and
# its arms share references and condition: the same inversion and round trip many times over (a third of the
# synthesis's time on the rare-concept study's digits before this memo). Each result is a deterministic function of
# its key, so a remembered one is the bytes a new computation would give.
_memo: "weakref.WeakKeyDictionary[object, OrderedDict]" = weakref.WeakKeyDictionary()


def _fingerprint(tensor: torch.Tensor) -> str:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return f"{tuple(tensor.shape)}{flat.dtype}" + hashlib.sha1(flat.view(torch.uint8).numpy().tobytes()).hexdigest()


def _images_key(c) -> tuple:
    return tuple(c.images.shape), str(c.images.dtype), c.digest()


def _remembered(model, key: tuple, compute):
    """``compute()`` once per model and key: every input of the result, and the model's settings and the threads
    the kernels run with (they decide the bytes)."""
    key = key + tuple(str(getattr(model, name, None)) for name in MODEL_STATE) + (torch.get_num_threads(),)
    try:
        store = _memo.setdefault(model, OrderedDict())
    except TypeError:  # a model that cannot be weakly referenced is computed every time
        return compute()
    value = store.pop(key) if key in store else compute()
    store[key] = value  # the most recent last
    if len(store) > MEMO_SIZE:
        store.popitem(last=False)
    return value.clone() if isinstance(value, torch.Tensor) else list(value)


def check_fixed_point(model) -> None:
    """ValueError unless the model samples with DDIM on a noise schedule (what the fixed-point inversion inverts)."""
    if getattr(model, "alphas_cumprod", None) is None or \
            sampling.default_scheduler(getattr(model, "prediction_type", "epsilon")) != "ddim":
        raise ValueError(f"inversion 'fixed-point' inverts the DDIM sampler; {model.name} does not sample with DDIM: "
                         "use inversion 'ddim'")


def fixed_point_invert(model, images: torch.Tensor, condition, steps: int, guidance: float,
                       iterations: int = FIXED_POINT_ITERATIONS) -> torch.Tensor:
    """Images (N, *image_shape) in [0, 1] -> seeds (N, *seed_shape) on the CPU that ``model.generate(seeds,
    condition, steps, guidance)`` maps back onto the images (see the module docstring), in the model's batches."""
    check_fixed_point(model)
    conds = conditions_list(condition, images.shape[0])
    timesteps = ddim_timesteps(model.alphas_cumprod.numel(), steps)[::-1]  # clean -> noisy
    levels = [torch.ones((), dtype=torch.float64)] + [model.alphas_cumprod[t].double() for t in timesteps]
    out = []
    with torch.inference_mode():
        for i in range(0, images.shape[0], model.batch_size):
            eps = model.noise_predictor(conds[i:i + model.batch_size], guidance)
            x = model.encode(images[i:i + model.batch_size])
            for j, t in enumerate(timesteps):
                a_t, a_s = levels[j].to(x.dtype), levels[j + 1].to(x.dtype)
                e = eps(x, t)  # plain inversion's guess, then the sampler's step solved at the point it starts from
                x_s = a_s.sqrt() * predict_x0(x, e, a_t) + (1 - a_s).sqrt() * e
                for _ in range(iterations):
                    e = eps(x_s, t)
                    x_s = a_s.sqrt() * predict_x0(x, e, a_t) + (1 - a_s).sqrt() * e
                x = x_s
            out.append(x.float().cpu())
    return torch.cat(out).clone()


def invert_classes(model, classes: list, steps: int, settings=None) -> dict[str, torch.Tensor]:
    """DDIM inversions of every class's references, with the class's condition: {folder: (k, *seed_shape)}; with
    ``settings.inversion == 'fixed-point'`` the fixed-point inversion of the run's sampler (its steps and
    guidance, :func:`fixed_point_invert`)."""
    fixed = settings is not None and settings.inversion == "fixed-point"

    def invert(c) -> torch.Tensor:
        if fixed:
            return _remembered(model, ("fixed-point", *_images_key(c), repr(c.condition), settings.steps,
                                       settings.guidance, FIXED_POINT_ITERATIONS),
                               lambda: fixed_point_invert(model, c.images, c.condition, settings.steps,
                                                          settings.guidance))
        return _remembered(model, ("ddim", *_images_key(c), repr(c.condition), steps),
                           lambda: model.invert(c.images, c.condition, steps).float().cpu())

    with command_bar(classes, desc="inverting references", unit="class") as bar:
        return {c.folder: invert(c) for c in bar}


def round_trips(model, classes: list, inversions: dict[str, torch.Tensor], settings) -> dict[str, list[float]]:
    """Each reference regenerated from its inversion with the run's sampling (steps, guidance, the class's
    condition): {folder: PSNR in dB per reference}, what tells whether a path's endpoints are its references.
    ValueError when one comes back without a picture: every seed made from that inversion risks the same."""
    def check(c) -> list[float]:
        images = model.generate(inversions[c.folder], c.condition, settings.steps, settings.guidance)
        failed = outputs.first_degenerate(images)
        if failed is not None:
            i, reason = failed
            raise ValueError(f"class {c.name!r}: reference {i} inverted ({settings.inversion}) with "
                             f"{settings.inversion_steps} inversion steps comes back {reason} at "
                             f"{settings.steps} steps and guidance {settings.guidance:g}; seeds made from it "
                             "would give such images: raise inversion_steps (and steps)")
        return [round(float(v), 2) for v in image_psnr(images, c.images)]

    with command_bar(classes, desc="checking inversions", unit="class") as bar:
        return {c.folder: _remembered(model, ("round trip", _fingerprint(inversions[c.folder]), *_images_key(c),
                                              repr(c.condition), settings.steps, settings.guidance),
                                      lambda: check(c))
                for c in bar}
