"""The machinery every DDIM backend shares: seed checks, batched sampling and inversion, image files, and the
defaults of the protocol's optional parts (no classes, no feature extractor, no judge)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .base import Condition, conditions_list
from .ddim import StepCallback, ddim_invert, ddim_sample


class DDIMModel:
    """Shared DDIM machinery behind :class:`~seedspace.backends.base.SeedModel`.

    Subclasses provide ``noise_predictor(conditions, guidance)``, ``encode``, ``decode``, ``prepare_image``,
    ``class_index``, ``name``, ``seed_shape``, ``image_shape``, ``conditioning``, ``alphas_cumprod``,
    ``batch_size``, ``device``, ``dtype`` and the defaults; the optional parts below say "absent" until overridden.
    """

    class_names: list[str] | None = None
    num_classes: int | None = None
    null_class: int | None = None
    head_classes: Sequence[int] = ()
    tail_classes: Sequence[int] = ()
    has_features = False
    has_judge = False

    def check_seeds(self, seeds: torch.Tensor) -> torch.Tensor:
        """Seeds (N, *seed_shape) as float32 on the model's device; ValueError on a wrong shape or NaN/inf."""
        if tuple(seeds.shape[1:]) != tuple(self.seed_shape):
            raise ValueError(f"seeds must have shape (N, {', '.join(map(str, self.seed_shape))}), got {tuple(seeds.shape)}")
        if not torch.isfinite(seeds).all():
            raise ValueError("seeds contain NaN or infinite values")
        return seeds.to(self.device, torch.float32)  # the DDIM arithmetic runs in float32 at least

    def generate_x0(self, seeds: torch.Tensor, condition: Condition = None, steps: int | None = None,
                    guidance: float | None = None, progress: bool = False, checkpoint: bool = False,
                    callback: StepCallback | None = None) -> torch.Tensor:
        """DDIM from seeds to the clean sample x_0 in the diffusion space, one batch, differentiable;
        ``callback(i, x_i, x0_hat_i)`` sees every step (see :func:`~seedspace.backends.ddim.ddim_sample`)."""
        seeds = self.check_seeds(seeds)
        eps = self.noise_predictor(conditions_list(condition, seeds.shape[0]),
                                   self.default_guidance if guidance is None else float(guidance))
        return ddim_sample(eps, seeds, self.alphas_cumprod, steps or self.default_steps, progress, checkpoint, callback)

    @torch.no_grad()
    def generate(self, seeds: torch.Tensor, condition: Condition = None, steps: int | None = None,
                 guidance: float | None = None, progress: bool = False) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] on the CPU from seeds (N, *seed_shape), in batches of ``batch_size``."""
        conds = conditions_list(condition, seeds.shape[0])
        bs = self.batch_size
        return torch.cat([self.decode(self.generate_x0(seeds[i:i + bs], conds[i:i + bs], steps, guidance, progress)).cpu()
                          for i in range(0, seeds.shape[0], bs)]).float()

    @torch.no_grad()
    def invert(self, images: torch.Tensor, condition: Condition = None, steps: int | None = None,
               progress: bool = False) -> torch.Tensor:
        """DDIM inversion with guidance 1 (as in the NAO and SeedSelect code): images in [0, 1] -> seeds."""
        conds = conditions_list(condition, images.shape[0])
        bs, out = self.batch_size, []
        for i in range(0, images.shape[0], bs):
            x0 = self.encode(images[i:i + bs])
            eps = self.noise_predictor(conds[i:i + bs], 1.0)
            out.append(ddim_invert(eps, x0, self.alphas_cumprod, steps or self.default_steps, progress).cpu())
        return torch.cat(out)

    def decode_differentiable(self, x0: torch.Tensor) -> torch.Tensor:
        """``decode`` itself: gradients flow through the decoder (and stop where it clamps to [0, 1])."""
        return self.decode(x0)

    def load_images(self, paths: Sequence[Union[str, Path]]) -> torch.Tensor:
        """Read image files -> (N, C, H, W) in [0, 1] at the model's size; ValueError names an unreadable file."""
        arrays = []
        for path in paths:
            try:
                with Image.open(path) as im:
                    im.load()
                    arrays.append(self.prepare_image(im))
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
                raise ValueError(f"cannot read image {path}: {exc}") from None
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
