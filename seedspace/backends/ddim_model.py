"""The machinery every DDIM backend shares: seed checks, batched sampling and inversion, image files, and the
defaults of the protocol's optional parts (no classes, no feature extractor, no judge)."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from PIL import Image

from . import sampling
from .base import Condition, check_seed_values, conditions_list
from .ddim import StepCallback
from ..outputs.images import read_image
from .images import DEFAULT_FIT, check_fit, report_conversion

_FULL_SCALE = {"I;16": 65535.0, "I;16B": 65535.0, "I;16L": 65535.0, "I;16N": 65535.0, "I": 65535.0, "F": 1.0}


class DDIMModel:
    """Shared sampling machinery behind :class:`~seedspace.backends.base.SeedModel`.

    Subclasses provide ``noise_predictor(conditions, guidance)``, ``encode``, ``decode``, ``prepare_image``,
    ``class_index``, ``name``, ``seed_shape``, ``image_shape``, ``conditioning``, ``alphas_cumprod``,
    ``batch_size``, ``device``, ``dtype`` and the defaults; the optional parts below say "absent" until overridden.
    Samplers other than DDIM (see :mod:`~seedspace.backends.sampling`) also use ``prediction_type``,
    ``model_prediction``, ``scheduler_config`` and ``timestep_options``, whose defaults here fit epsilon models.
    """

    prediction_type = "epsilon"  # what the network predicts: 'epsilon', 'v_prediction' or 'flow' (velocity)
    inversion_guidance = 1.0  # inversion runs without classifier-free guidance (as in the NAO and SeedSelect code)

    @property
    def default_scheduler(self) -> str:
        """The sampler used when none is named: 'ddim', or 'flow-euler' for flow-matching models."""
        return sampling.default_scheduler(self.prediction_type)

    def model_prediction(self, conditions: Sequence, guidance: float):
        """The raw guided network output f(x, t) (here epsilon: the noise predictor itself)."""
        return self.noise_predictor(conditions, guidance)

    @property
    def scheduler_config(self) -> dict:
        """The training schedule as a diffusers scheduler config (rebuilt from ``alphas_cumprod``)."""
        return sampling.schedule_config(self.alphas_cumprod)

    def timestep_options(self, steps: int) -> dict:
        """Extra ``set_timesteps`` arguments of the diffusers schedulers (none here)."""
        return {}

    prior_path: Path | None = None  # where the calibrated norm prior is read (and `calibrate --out model` writes)

    @property
    def prior(self):
        """The norm prior calibrated for this model (the file at ``prior_path``: ``prior.json`` in a testbed
        folder, the per-model cache for diffusers models), or None when it has none. ValueError naming the file when
        it is malformed or made for another dimension: never a silent fallback to chi."""
        if self.prior_path is None or not os.path.lexists(self.prior_path):
            return None  # a folder, pipe or broken link in its place is refused below, never taken as "no prior"
        from ..geometry import load_prior  # the geometry only when a prior is asked for

        try:
            return load_prior(self.prior_path, math.prod(self.seed_shape))
        except ValueError as exc:
            raise ValueError(f"{self.prior_path}: {exc}") from None

    class_names: list[str] | None = None
    num_classes: int | None = None
    null_class: int | None = None
    head_classes: Sequence[int] = ()
    tail_classes: Sequence[int] = ()
    has_features = False
    has_judge = False

    def check_seeds(self, seeds: torch.Tensor) -> torch.Tensor:
        """Seeds (N, *seed_shape) as float32 on the model's device; ValueError on a wrong shape, a dtype that is
        not floating point, NaN/inf, or a norm too large for the model's arithmetic."""
        if not isinstance(seeds, torch.Tensor) or tuple(seeds.shape[1:]) != tuple(self.seed_shape):
            raise ValueError(f"seeds must have shape (N, {', '.join(map(str, self.seed_shape))}), got "
                             f"{tuple(getattr(seeds, 'shape', ()))}")
        check_seed_values(seeds, "seeds", self.dtype if self.dtype in (torch.float16,) else torch.float32)
        return seeds.to(self.device, torch.float32)  # the DDIM arithmetic runs in float32 at least

    def generate_x0(self, seeds: torch.Tensor, condition: Condition = None, steps: int | None = None,
                    guidance: float | None = None, checkpoint: bool = False, callback: StepCallback | None = None,
                    scheduler: str | None = None) -> torch.Tensor:
        """Seeds to the clean sample x_0 in the diffusion space with the named sampler (None: the model's default,
        DDIM for epsilon / v models), one batch, differentiable; ``callback(i, x_i, x0_hat_i)`` sees every step
        (see :func:`~seedspace.backends.sampling.sample`)."""
        seeds = self.check_seeds(seeds)
        return sampling.sample(self, seeds, conditions_list(condition, seeds.shape[0]), steps or self.default_steps,
                               self.default_guidance if guidance is None else float(guidance), scheduler, checkpoint,
                               callback)

    def generate(self, seeds: torch.Tensor, condition: Condition = None, steps: int | None = None,
                 guidance: float | None = None, scheduler: str | None = None) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] on the CPU from seeds (N, *seed_shape), in batches of ``batch_size``,
        with the named sampler (None: the model's default)."""
        sampling.check_scheduler(scheduler, self.prediction_type, self.name)
        conds = conditions_list(condition, seeds.shape[0])
        bs = self.batch_size
        with torch.inference_mode():  # no autograd bookkeeping at all in the sampling loop (same bytes as no_grad)
            images = torch.cat([self.decode(self.generate_x0(seeds[i:i + bs], conds[i:i + bs], steps, guidance,
                                                             scheduler=scheduler)).cpu()
                                for i in range(0, seeds.shape[0], bs)]).float()
        return images.clone()  # a normal tensor: inference tensors cannot be saved for a later backward pass

    def invert(self, images: torch.Tensor, condition: Condition = None, steps: int | None = None,
               scheduler: str | None = None) -> torch.Tensor:
        """Images in [0, 1] -> seeds by the inversion of the named sampler (None: the model's: DDIM inversion for
        epsilon / v models, reverse Euler for flow models), without classifier-free guidance."""
        sampling.check_inversion(scheduler, self.prediction_type, self.name)
        conds = conditions_list(condition, images.shape[0])
        bs, out = self.batch_size, []
        with torch.inference_mode():
            for i in range(0, images.shape[0], bs):
                x0 = self.encode(images[i:i + bs])
                out.append(sampling.invert(self, x0, conds[i:i + bs], steps or self.default_steps,
                                           self.inversion_guidance, scheduler).cpu())
            seeds = torch.cat(out)
        return seeds.clone()  # a normal tensor, as generate's

    def decode_differentiable(self, x0: torch.Tensor) -> torch.Tensor:
        """``decode`` itself: gradients flow through the decoder (and stop where it clamps to [0, 1])."""
        return self.decode(x0)

    image_fit = DEFAULT_FIT  # how load_images fits an image of another aspect ratio: 'crop' or 'pad'

    def load_images(self, paths: Sequence[Union[str, Path]], fit: str | None = None,
                    conversions: list | None = None) -> torch.Tensor:
        """Read image files -> (N, C, H, W) in [0, 1] at the model's size and colour, fitted by ``fit`` ('crop',
        'pad'; None: ``image_fit``) as :mod:`~seedspace.backends.images` describes; each conversion is one log line
        and, given ``conversions``, one record there. ValueError names an unreadable file, a folder, or an image
        over ``outputs.images.MAX_IMAGE_PIXELS``. 16-bit and float images are scaled by their full range (65535, resp. 1)
        instead of being clipped to 8 bits."""
        fit = check_fit(self.image_fit if fit is None else fit)
        arrays = []
        for path in paths:
            im = read_image(path)
            notes = [f"{im.mode} values scaled to 8 bits"] if im.mode in _FULL_SCALE else []
            try:
                arrays.append(self.prepare_image(_eight_bit(im), fit, notes))
            except ValueError as exc:
                raise ValueError(f"cannot read image {path}: {exc}") from None
            if notes:
                report_conversion(path, im.size, im.mode, arrays[-1].shape, fit, notes, conversions)
        if not arrays:
            raise ValueError("no images given")
        return torch.from_numpy(np.stack(arrays))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Absent here: ValueError naming the model."""
        raise ValueError(f"{self.name} has no built-in image feature extractor: give one explicitly (a callable "
                         "images -> features, or a local CLIP folder)")

    def judge_features(self, images: torch.Tensor) -> torch.Tensor:
        """Absent here: ValueError naming the model."""
        raise self._no_judge()

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """Absent here: ValueError naming the model."""
        raise self._no_judge()

    def fewshot(self, class_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Absent here: ValueError naming the model."""
        raise self._no_judge()

    def _no_judge(self) -> ValueError:
        return ValueError(f"{self.name} has no judge (classifier, judge features and real few-shot images); "
                          "only testbed-format models have one")


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit integer images (scaled by 65535) and float images (values in [0, 1]) as 8-bit grey
    images; other modes as given. Pillow's own conversion clips them to 0..255, which turns a 16-bit picture
    white and a float one black."""
    if image.mode not in _FULL_SCALE:
        return image
    values = np.asarray(image, dtype=np.float64) / _FULL_SCALE[image.mode]
    if not np.isfinite(values).all():
        raise ValueError("the image holds NaN or infinite values")
    low, high = float(values.min()), float(values.max())
    if low < -1e-3 or high > 1 + 1e-3:
        scale = "[0, 1]" if image.mode == "F" else "[0, 65535]"
        raise ValueError(f"its {image.mode} pixel values span [{low * _FULL_SCALE[image.mode]:g}, "
                         f"{high * _FULL_SCALE[image.mode]:g}], outside {scale}")
    return Image.fromarray(np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8))
