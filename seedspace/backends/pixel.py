"""Pixel-space diffusion and flow-matching models: any diffusers ``UNet2DModel`` (unconditional or
class-conditional) that predicts noise (DDPM-style schedule) or velocity (flow-matching schedule)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .acceleration import CompiledForward
from .base import UNCONDITIONAL
from .ddim_model import DDIMModel
from .images import fit_image
from .sampling import eps_from_velocity


class PixelUNetModel(DDIMModel):
    """A ``UNet2DModel`` with epsilon prediction, sampled by DDIM, or (``flow_config``: a flow-matching scheduler
    config) with velocity prediction, sampled by flow-matching Euler; optional classifier-free guidance.

    Class-conditional models take class indices; guidance != 1 needs a null class (``null_class``), the index
    trained as "no class". Images in [0, 1] map to the model's [-1, 1] pixel space.
    """

    def __init__(self, unet, alphas_cumprod: torch.Tensor | None, name: str, null_class: int | None = None,
                 class_names: Sequence[str] | None = None, default_steps: int = 50, default_guidance: float = 1.0,
                 batch_size: int = 64, flow_config: dict | None = None, compile: bool = False):
        if (alphas_cumprod is None) == (flow_config is None):
            raise ValueError("give a pixel model either alphas_cumprod (noise prediction) or flow_config (velocity)")
        self.unet = unet.eval().requires_grad_(False)
        self.alphas_cumprod = None if alphas_cumprod is None else alphas_cumprod.float()
        self.flow_config = None if flow_config is None else dict(flow_config)
        if flow_config is not None:
            self.prediction_type = "flow"
        self.name = name
        cfg = unet.config
        self.seed_shape = (cfg.in_channels, *((cfg.sample_size,) * 2 if isinstance(cfg.sample_size, int) else cfg.sample_size))
        self.image_shape = self.seed_shape  # pixel models diffuse in image space
        self.num_classes = None if cfg.num_class_embeds is None else cfg.num_class_embeds - (null_class is not None)
        self.conditioning = "none" if self.num_classes is None else "class"
        self.null_class = null_class
        self.class_names = list(class_names) if class_names else None
        self.default_steps, self.default_guidance, self.batch_size = default_steps, default_guidance, batch_size
        self.compile = compile

    @property
    def compile(self) -> bool:
        """Whether inference runs the UNet through ``torch.compile`` (see :mod:`~seedspace.backends.acceleration`):
        faster where it compiles, other bytes than the eager forward, so a recorded setting; off by default."""
        return self._compiled is not None

    @compile.setter
    def compile(self, on: bool) -> None:
        if not isinstance(on, bool):
            raise ValueError(f"compile must be True or False, got {on!r}")
        self._compiled = CompiledForward(self.unet) if on else None

    def _unet(self, x: torch.Tensor, t, labels) -> torch.Tensor:
        """The UNet's output for (x, t, labels): compiled for inference calls when ``compile`` is on."""
        if self._compiled is not None:
            return self._compiled(x, t, class_labels=labels)
        return self.unet(x, t, class_labels=labels).sample

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    # -- conditions ------------------------------------------------------------------------------------
    def class_index(self, condition) -> int | None:
        """A class index from an int, a digit string or a class name (case-insensitive); ``"unconditional"``
        gives the null class (the model's unconditional distribution)."""
        if self.num_classes is None:
            if condition not in (None, ""):
                raise ValueError(f"{self.name} is unconditional; it takes no class or prompt")
            return None
        if condition is None:
            raise ValueError(f"{self.name} is class-conditional: give a class (0..{self.num_classes - 1})")
        if isinstance(condition, str) and condition.strip().lower() == UNCONDITIONAL:
            if self.null_class is None:
                raise ValueError(f"{self.name} has no null class, so it cannot generate unconditionally")
            return self.null_class  # the "no class" label trained for classifier-free guidance
        if isinstance(condition, str) and not condition.strip().lstrip("-").isdigit():
            names = [n.lower() for n in (self.class_names or [])]
            if condition.lower() not in names:
                raise ValueError(f"unknown class {condition!r}; known: {', '.join(self.class_names or [])}")
            return names.index(condition.lower())
        index = int(condition)
        if not 0 <= index < self.num_classes:
            raise ValueError(f"class must be in 0..{self.num_classes - 1}, got {index}")
        return index

    @property
    def scheduler_config(self) -> dict:
        """The training schedule as a diffusers scheduler config: the flow config, or one rebuilt from
        ``alphas_cumprod``."""
        return self.flow_config if self.flow_config is not None else super().scheduler_config

    def noise_predictor(self, conditions: Sequence, guidance: float):
        """eps(x, t): the guided network output, or for flow models x + (1 - sigma) v(x, t)."""
        out = self.model_prediction(conditions, guidance)
        if self.prediction_type == "flow":
            return eps_from_velocity(out, self.flow_config.get("num_train_timesteps", 1000))
        return out

    def model_prediction(self, conditions: Sequence, guidance: float):
        """The network output (epsilon or velocity) with classifier-free guidance: f_u + g (f_c - f_u) (one pass
        when g == 1 or g == 0)."""
        labels = [self.class_index(c) for c in conditions]
        labels = None if labels[0] is None else torch.tensor(labels, device=self.device)
        if guidance != 1.0 and (labels is None or self.null_class is None):
            raise ValueError(f"{self.name} has no null class: guidance must be 1")

        def net(x: torch.Tensor, t) -> torch.Tensor:
            xin = x.to(self.dtype)
            if guidance == 1.0:
                return self._unet(xin, t, labels).to(x.dtype)
            null = torch.full_like(labels, self.null_class)
            if guidance == 0.0:  # the unconditional half alone: half the cost, and the same bytes as the null class
                return self._unet(xin, t, null).to(x.dtype)
            out = self._unet(torch.cat([xin, xin]), t, torch.cat([labels, null])).to(x.dtype)  # CFG: one forward
            cond, uncond = out.chunk(2)
            return uncond + guidance * (cond - uncond)

        return net

    # -- images ----------------------------------------------------------------------------------------
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the diffusion space ([-1, 1] pixels)."""
        if tuple(images.shape[1:]) != self.seed_shape:
            raise ValueError(f"images must have shape (N, {', '.join(map(str, self.seed_shape))}), got {tuple(images.shape)}")
        return images.to(self.device, torch.float32) * 2 - 1

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """The diffusion space -> images in [0, 1]."""
        return ((x0 + 1) / 2).clamp(0, 1)

    def decode_differentiable(self, x0: torch.Tensor) -> torch.Tensor:
        """(x0 + 1) / 2 clamped to [0, 1] in the forward pass with a straight-through gradient, so out-of-range
        pixels (as in early x0-predictions) still pass gradient, which a plain clamp would zero."""
        raw = (x0 + 1) / 2
        return raw + (raw.clamp(0, 1) - raw).detach()

    def prepare_image(self, image, fit: str | None = None, notes: list | None = None) -> np.ndarray:
        """A PIL image -> float array (C, H, W) in [0, 1] at the model's size and colour (grey for 1 channel),
        fitted by ``fit`` (None: ``image_fit``); the conversions made go to ``notes``."""
        channels, height, width = self.seed_shape
        return fit_image(image, channels, height, width, self.image_fit if fit is None else fit, notes)
