"""What every text-to-image diffusers pipeline shares behind the ``SeedModel`` protocol: prompts (cached text
embeddings), VAE latents as seeds, image files at the model's size, and the pipeline's own training schedule."""

from __future__ import annotations

import numpy as np
import torch

from .ddim_model import DDIMModel
from .images import fit_image


class LatentPromptModel(DDIMModel):
    """A diffusers text-to-image pipeline: seeds are VAE latents (C, H / s, W / s), conditions are prompts.

    Subclasses set ``prediction_type`` and provide ``_encode_prompt(prompt)`` (the pipeline's embeddings of one
    prompt and the negative prompt) and ``model_prediction`` / ``noise_predictor``.
    """

    conditioning = "prompt"

    def __init__(self, pipe, denoiser, latent_channels: int, name: str, negative_prompt: str = "",
                 height: int | None = None, width: int | None = None, default_steps: int = 50,
                 default_guidance: float = 7.5, batch_size: int = 4, size_multiple: int = 1,
                 sample_size: int | None = None):
        self.pipe, self.name, self.negative_prompt = pipe, name, negative_prompt
        self.denoiser, self.vae = denoiser.eval(), pipe.vae.eval()
        self.denoiser.requires_grad_(False)
        self.vae.requires_grad_(False)
        size = sample_size or int(getattr(pipe, "default_sample_size", None) or denoiser.config.sample_size)
        self.default_size = (size * pipe.vae_scale_factor, size * pipe.vae_scale_factor)
        self.size_multiple = pipe.vae_scale_factor * size_multiple  # e.g. Flux packs 2x2 latent patches
        self._latent_channels = int(latent_channels)
        self.set_size(height, width)
        self.default_steps, self.default_guidance, self.batch_size = default_steps, default_guidance, batch_size
        self._embeddings: dict[tuple[str, str], tuple] = {}

    def set_size(self, height: int | None = None, width: int | None = None) -> None:
        """Render (and read images) at ``height`` x ``width`` pixels (None: the pipeline's default size): seeds
        become (C, height / s, width / s). ValueError unless both are positive multiples of ``size_multiple`` (the
        VAE's scale factor s; 2 s for Flux, whose transformer takes 2x2 latent patches)."""
        height, width = height or self.default_size[0], width or self.default_size[1]
        m = self.size_multiple
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= m and v % m == 0 for v in (height, width)):
            raise ValueError(f"height and width must be positive multiples of {m} for {self.name}, got "
                             f"{height} x {width}")
        scale = self.pipe.vae_scale_factor
        self.height, self.width = height, width
        self.seed_shape = (self._latent_channels, height // scale, width // scale)
        self.image_shape = (int(self.vae.config.in_channels), height, width)

    @property
    def device(self) -> torch.device:
        return self.denoiser.device

    @property
    def dtype(self) -> torch.dtype:
        return self.denoiser.dtype

    @property
    def scheduler_config(self) -> dict:
        """The pipeline's own scheduler config (its training schedule and shift settings)."""
        return dict(self.pipe.scheduler.config)

    def class_index(self, condition) -> int | None:
        """Prompt models have no classes: always a ValueError."""
        raise ValueError(f"{self.name} takes text prompts, not classes")

    def _embed(self, prompt: str | None):
        """The pipeline's text embeddings of one prompt (None: the empty prompt) and the negative prompt, cached."""
        key = (prompt or "", self.negative_prompt)
        if key not in self._embeddings:
            with torch.no_grad():
                self._embeddings[key] = self._encode_prompt(*key)
        return self._embeddings[key]

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> scaled VAE latents (posterior mean): (mean - shift) * scaling."""
        x = images.to(self.device, self.vae.dtype) * 2 - 1
        shift = self.vae.config.get("shift_factor") or 0.0
        return ((self.vae.encode(x).latent_dist.mean - shift) * self.vae.config.scaling_factor).float()

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled VAE latents -> images in [0, 1]."""
        shift = self.vae.config.get("shift_factor") or 0.0
        x = self.vae.decode((latents / self.vae.config.scaling_factor + shift).to(self.vae.dtype)).sample
        return ((x.float() + 1) / 2).clamp(0, 1)

    def prepare_image(self, image, fit: str | None = None, notes: list | None = None) -> np.ndarray:
        """A PIL image -> float array (3, H, W) in [0, 1] at the model's size, colour kept, fitted by ``fit``
        (None: ``image_fit``); the conversions made go to ``notes``."""
        return fit_image(image, 3, self.height, self.width, self.image_fit if fit is None else fit, notes)
