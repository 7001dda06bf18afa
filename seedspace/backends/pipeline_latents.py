"""seedspace seeds as ``latents=`` for any diffusers text-to-image pipeline (the recipe for people who keep their
own pipeline and want NAO paths, centroids or blends of its noise).

    shape = ss.latent_shape(pipe, 512, 512)                   # (4, 64, 64) for SD 1.5; (16, 64, 64) for Flux
    a, b = ss.seeds_from_ints([11, 42], shape)                # generator=torch.Generator("cpu").manual_seed(s)
    path = ss.interpolate(a, b, steps=9)
    for z in ss.pipeline_latents(pipe, path):                 # one latents= per frame
        image = pipe("a photo of a boot", latents=z[None], height=512, width=512).images[0]

Seeds are unit-variance noise in the unpacked latent layout (C, H / s, W / s), drawn as the pipelines draw them
from a CPU generator. The pipelines scale given latents by ``scheduler.init_noise_sigma`` themselves (SD 1.x / 2.x,
SDXL; flow models need no scaling), so nothing is rescaled here; Flux takes 2x2 patches packed into tokens, which
:func:`pipeline_latents` does with the pipeline's own ``_pack_latents``.
"""

from __future__ import annotations

import numbers

import torch


def _denoiser(pipe):
    return getattr(pipe, "unet", None) or getattr(pipe, "transformer")


def _packs_latents(pipe) -> bool:
    return type(pipe).__name__.startswith("Flux")


def latent_shape(pipe, height: int | None = None, width: int | None = None) -> tuple[int, int, int]:
    """(C, H / s, W / s): the shape of one seed of ``pipe`` at ``height`` x ``width`` pixels (default: the
    pipeline's own sample size); ValueError for a size the pipeline cannot render."""
    scale = int(pipe.vae_scale_factor)
    size = int(getattr(pipe, "default_sample_size", None) or _denoiser(pipe).config.sample_size)
    for name, value in (("height", height), ("width", width)):  # None: the default; 0 is not "unset"
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise ValueError(f"{name} must be an integer number of pixels, got {value!r}")
    height = int(size * scale if height is None else height)
    width = int(size * scale if width is None else width)
    multiple = scale * (2 if _packs_latents(pipe) else 1)
    if height < multiple or width < multiple or height % multiple or width % multiple:
        raise ValueError(f"height and width must be positive multiples of {multiple} for {type(pipe).__name__}, "
                         f"got {height} x {width}")
    return int(pipe.vae.config.latent_channels), height // scale, width // scale


def pipeline_latents(pipe, seeds: torch.Tensor) -> torch.Tensor:
    """Seeds (N, C, h, w) -> the ``latents=`` tensor of ``pipe`` for N images (packed for Flux), on the
    pipeline's device and dtype."""
    if not isinstance(seeds, torch.Tensor):
        raise ValueError(f"seeds must be a tensor (N, C, h, w) of latents, got {type(seeds).__name__}")
    channels = int(pipe.vae.config.latent_channels)
    if seeds.dim() != 4 or seeds.shape[1] != channels or not torch.isfinite(seeds).all():
        raise ValueError(f"seeds must be finite (N, {channels}, h, w) latents for {type(pipe).__name__}, got "
                         f"{tuple(seeds.shape)}")
    seeds = seeds.to(device=pipe.device, dtype=_denoiser(pipe).dtype)
    if _packs_latents(pipe):
        n, c, h, w = seeds.shape
        if h % 2 or w % 2:
            raise ValueError(f"Flux packs 2x2 latent patches: h and w must be even, got {h} x {w}")
        return pipe._pack_latents(seeds, n, c, h, w)
    return seeds
