"""The model protocol every backend implements, its condition conventions, and seed drawing."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence, Union, runtime_checkable

import torch

from ..noise import seeds_from_ints  # noqa: F401  (re-exported: models draw their seeds here)
from .ddim import EpsFn, StepCallback

Condition = Union[int, str, Sequence[int], Sequence[str], None]
UNCONDITIONAL = "unconditional"  # the condition string that selects a class model's null class


@runtime_checkable
class SeedModel(Protocol):
    """A diffusion model seen through its seeds; every backend (testbed, pixel UNet, Stable Diffusion) has all of it.

    Shapes: ``seed_shape`` of one seed x_T ~ N(0, I), e.g. (1, 32, 32) or (4, 64, 64); ``image_shape`` (C, H, W)
    of its images, which are float tensors in [0, 1]. Conditions: ``conditioning`` says what a condition is:
    ``"class"`` (an index, a digit string, a class name, or ``"unconditional"`` for the null class), ``"prompt"``
    (text) or ``"none"`` (an unconditional model: ``None``); one condition, or a list with one per seed.

    Optional parts raise a ValueError naming the model when it lacks them; ``has_features`` and ``has_judge``
    say beforehand: ``features`` (semantic image features) and the judge (``classify``, ``judge_features`` and
    the shipped real images ``fewshot``).
    """

    name: str
    seed_shape: tuple[int, ...]
    image_shape: tuple[int, int, int]
    device: torch.device
    dtype: torch.dtype
    default_steps: int
    default_guidance: float
    batch_size: int
    conditioning: str
    class_names: list[str] | None
    num_classes: int | None
    null_class: int | None
    head_classes: Sequence[int]
    tail_classes: Sequence[int]
    has_features: bool
    has_judge: bool

    def class_index(self, condition: int | str | None) -> int | None:
        """The class index of a class model's condition; ValueError for unknown classes and for prompt models."""
        ...

    def check_seeds(self, seeds: torch.Tensor) -> torch.Tensor:
        """Seeds (N, *seed_shape) as float32 on the model's device; ValueError on a wrong shape or NaN/inf."""
        ...

    def noise_predictor(self, conditions: Sequence, guidance: float) -> EpsFn:
        """eps(x, t) for one condition per row of x, with classifier-free guidance eps_u + g (eps_c - eps_u);
        ValueError on a condition the model does not take."""
        ...

    def generate_x0(self, seeds: torch.Tensor, condition: Condition = None, steps: int | None = None,
                    guidance: float | None = None, checkpoint: bool = False,
                    callback: StepCallback | None = None) -> torch.Tensor:
        """Deterministic DDIM from seeds to the clean sample x_0 in the diffusion space, one batch, differentiable;
        ``callback(i, x_i, x0_hat_i)`` sees every step."""
        ...

    def generate(self, seeds: torch.Tensor, condition: Condition = None, steps: int | None = None,
                 guidance: float | None = None) -> torch.Tensor:
        """Images (N, *image_shape) in [0, 1] on the CPU: decode(generate_x0(seeds)), in batches."""
        ...

    def invert(self, images: torch.Tensor, condition: Condition = None, steps: int | None = None) -> torch.Tensor:
        """Deterministic DDIM inversion (guidance 1): images in [0, 1] -> seeds (N, *seed_shape) on the CPU."""
        ...

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> the diffusion space (pixels in [-1, 1], or VAE latents)."""
        ...

    def decode(self, x0: torch.Tensor) -> torch.Tensor:
        """The diffusion space -> images in [0, 1]."""
        ...

    def decode_differentiable(self, x0: torch.Tensor) -> torch.Tensor:
        """``decode`` for a loss to back-propagate through (same values in the forward pass)."""
        ...

    def load_images(self, paths: Sequence[Union[str, Path]]) -> torch.Tensor:
        """Image files -> (N, *image_shape) in [0, 1], resized to the model's size; ValueError names a bad file."""
        ...

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable semantic features (N, D) of images in [0, 1] (when ``has_features``)."""
        ...

    def judge_features(self, images: torch.Tensor) -> torch.Tensor:
        """The judge's features (N, D) of images in [0, 1]: the space of FID-style scores (when ``has_judge``)."""
        ...

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """The judge's class probabilities (N, num_classes) of images in [0, 1] (when ``has_judge``)."""
        ...

    def fewshot(self, class_index: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The shipped real images (N, *image_shape) in [0, 1] and their labels (when ``has_judge``)."""
        ...


def conditions_list(condition: Condition, n: int) -> list:
    """Broadcast one condition (or a list of n) to a list of n."""
    if isinstance(condition, (list, tuple)):
        if len(condition) != n:
            raise ValueError(f"got {len(condition)} conditions for {n} seeds")
        return list(condition)
    return [condition] * n


def check_seed_values(seeds: torch.Tensor, what: str = "seeds", dtype: torch.dtype = torch.float32) -> None:
    """ValueError unless ``seeds`` (N, ...) are floating point, finite, and each seed's squared norm |x|^2 (and
    every entry) is representable in ``dtype``: larger seeds overflow the sampler's float arithmetic (NaN or
    black frames), while a N(0, I) seed has |x| ~ sqrt(d)."""
    if not isinstance(seeds, torch.Tensor):
        raise ValueError(f"{what} must be a torch tensor, got {type(seeds).__name__}")
    if not seeds.is_floating_point():
        raise ValueError(f"{what}: {str(seeds.dtype).replace('torch.', '')} values; seeds must be floating point")
    if seeds.numel() == 0:
        return
    finite = torch.isfinite(seeds).reshape(seeds.shape[0], -1).all(dim=1) if seeds.dim() else torch.isfinite(seeds)
    if not bool(finite.all()):
        index = int((~finite).reshape(-1).nonzero()[0])
        raise ValueError(f"{what}: NaN or infinite values in seed {index}")
    flat = seeds.detach().double().reshape(seeds.shape[0] if seeds.dim() else 1, -1)
    limit = torch.finfo(dtype if dtype.is_floating_point else torch.float32).max
    norms_sq = flat.square().sum(dim=1)
    too_large = (norms_sq > torch.finfo(torch.float32).max) | (flat.abs().amax(dim=1) > limit)
    if bool(too_large.any()):
        index = int(too_large.nonzero()[0])
        raise ValueError(f"{what}: seed {index} has norm {float(norms_sq[index].sqrt()):.3g}, too large for "
                         f"{str(dtype).replace('torch.', '')} arithmetic (a N(0, I) seed of this size has norm "
                         f"about {flat.shape[1] ** 0.5:.3g})")
