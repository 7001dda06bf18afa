"""The model protocol every backend implements, seed drawing, and the model loader."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence, Union, runtime_checkable

import torch

Condition = Union[int, str, Sequence[int], Sequence[str], None]


@runtime_checkable
class SeedModel(Protocol):
    """A diffusion model seen through its seeds.

    - ``seed_shape``: shape of one seed (x_T ~ N(0, I)), e.g. (1, 32, 32) or (4, 64, 64).
    - ``generate(seeds, condition, steps, guidance)``: deterministic DDIM, seeds (N, *seed_shape) -> images
      (N, C, H, W) in [0, 1].
    - ``invert(images, condition, steps)``: deterministic DDIM inversion, images -> seeds (N, *seed_shape).
    - ``encode(images)`` / ``decode(x0)``: between images in [0, 1] and the space the diffusion runs in
      (identity-like for pixel models, the VAE for latent models).
    - ``features(images)``: semantic features of images (for SeedSelect and FID-style scores).
    """

    name: str
    seed_shape: tuple[int, ...]
    device: torch.device
    dtype: torch.dtype
    default_steps: int
    default_guidance: float

    def generate(self, seeds: torch.Tensor, condition: Condition = None, steps: int | None = None,
                 guidance: float | None = None, progress: bool = False) -> torch.Tensor: ...

    def invert(self, images: torch.Tensor, condition: Condition = None, steps: int | None = None,
               progress: bool = False) -> torch.Tensor: ...

    def load_images(self, paths: Sequence[Union[str, Path]]) -> torch.Tensor: ...

    def features(self, images: torch.Tensor) -> torch.Tensor: ...


class DDIMModel:
    """Shared DDIM machinery: subclasses provide ``eps_fn(conditions, guidance)``, ``encode``, ``decode``,
    ``prepare_image``, ``seed_shape``, ``alphas_cumprod``, ``batch_size`` and the defaults."""

    def _check_seeds(self, seeds: torch.Tensor) -> torch.Tensor:
        if tuple(seeds.shape[1:]) != tuple(self.seed_shape):
            raise ValueError(f"seeds must have shape (N, {', '.join(map(str, self.seed_shape))}), got {tuple(seeds.shape)}")
        if not torch.isfinite(seeds).all():
            raise ValueError("seeds contain NaN or infinite values")
        return seeds.to(self.device, torch.float32)  # the DDIM arithmetic runs in float32 at least

    def generate_x0(self, seeds: torch.Tensor, condition: Condition = None, steps: int | None = None,
                    guidance: float | None = None, progress: bool = False, checkpoint: bool = False) -> torch.Tensor:
        """DDIM from seeds to the clean sample x_0 in the diffusion space, one batch, differentiable."""
        from .ddim import ddim_sample

        seeds = self._check_seeds(seeds)
        eps = self.eps_fn(conditions_list(condition, seeds.shape[0]),
                          self.default_guidance if guidance is None else float(guidance))
        return ddim_sample(eps, seeds, self.alphas_cumprod, steps or self.default_steps, progress, checkpoint)

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
        from .ddim import ddim_invert

        conds = conditions_list(condition, images.shape[0])
        bs, out = self.batch_size, []
        for i in range(0, images.shape[0], bs):
            x0 = self.encode(images[i:i + bs])
            eps = self.eps_fn(conds[i:i + bs], 1.0)
            out.append(ddim_invert(eps, x0, self.alphas_cumprod, steps or self.default_steps, progress).cpu())
        return torch.cat(out)

    def load_images(self, paths: Sequence[Union[str, Path]]) -> torch.Tensor:
        """Read image files -> (N, C, H, W) in [0, 1] at the model's size; ValueError names an unreadable file."""
        import numpy as np
        from PIL import Image, UnidentifiedImageError

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
        raise NotImplementedError(f"{self.name} has no built-in feature extractor; pass one explicitly")


def seeds_from_ints(seed_ints: Sequence[int], shape: Sequence[int], dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """One N(0, I) seed per integer, drawn with a CPU ``torch.Generator`` (so every device gets the same noise)."""
    seeds = []
    for s in seed_ints:
        if not 0 <= int(s) < 2 ** 63:
            raise ValueError(f"seed integers must be in [0, 2^63), got {s}")
        seeds.append(torch.randn(tuple(shape), generator=torch.Generator().manual_seed(int(s)), dtype=torch.float32))
    return torch.stack(seeds).to(device=device, dtype=dtype)


def conditions_list(condition: Condition, n: int) -> list:
    """Broadcast one condition (or a list of n) to a list of n."""
    if isinstance(condition, (list, tuple)):
        if len(condition) != n:
            raise ValueError(f"got {len(condition)} conditions for {n} seeds")
        return list(condition)
    return [condition] * n


def resolve_device(device: str | torch.device | None) -> torch.device:
    """'auto'/None -> cuda if available, else mps, else cpu; anything else as given."""
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def load_model(name: str | Path | None = None, device: str | torch.device | None = "cpu",
               dtype: str | torch.dtype | None = None, **kwargs) -> SeedModel:
    """Load a model: None or 'testbed' -> the embedded testbed; a local folder or hub id -> diffusers.

    Hub ids are only read from the local Hugging Face cache (no network at run time).
    """
    device, dtype = resolve_device(device), resolve_dtype(dtype)
    from .testbed import TestbedModel

    if name in (None, "testbed"):
        return TestbedModel.from_package(device=device, dtype=dtype, **kwargs)
    if (Path(name) / "testbed.json").is_file():  # a testbed-format folder (e.g. from `seedspace testbed train`)
        return TestbedModel.from_folder(name, device=device, dtype=dtype, **kwargs)
    from .diffusers_backend import load_diffusers_model

    return load_diffusers_model(str(name), device=device, dtype=dtype, **kwargs)
