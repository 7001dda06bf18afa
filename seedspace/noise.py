"""Seeds from integers: N(0, I) noise drawn with a CPU ``torch.Generator`` per integer, so every device (and
ComfyUI's KSampler, for a batch-1 latent) gets the same noise for the same integer. Needs torch alone."""

from __future__ import annotations

import numbers
from typing import Sequence

import torch

from .checks import SEED_INT_LIMIT

MAX_SEED_ELEMENTS = 2 ** 31  # values in one seed: more cannot be allocated on the machines this runs on


def seeds_from_ints(seed_ints: Sequence[int], shape: Sequence[int], dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """One N(0, I) seed per integer, drawn with a CPU ``torch.Generator`` (so every device gets the same noise).
    ValueError naming the parameter for anything but a non-empty sequence of integers in [0, 2^63) and a shape of
    positive integers (a string is not a sequence of seeds, and 1.5 is not a seed)."""
    if isinstance(seed_ints, (str, bytes, dict)) or not hasattr(seed_ints, "__iter__"):
        raise ValueError(f"seed_ints must be a sequence of integers, got {seed_ints!r}")
    ints = [s.item() if isinstance(s, torch.Tensor) else s for s in seed_ints]
    bad = next((s for s in ints if isinstance(s, bool) or not isinstance(s, numbers.Integral)
                or not 0 <= int(s) < SEED_INT_LIMIT), None)
    if not ints or bad is not None:
        raise ValueError(f"seed_ints must be integers in [0, 2^63), got {'none' if not ints else repr(bad)}")
    if isinstance(shape, (str, bytes)) or not isinstance(shape, Sequence) or not shape or any(
            isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1 for n in shape):
        raise ValueError(f"shape must be a sequence of positive integers, got {shape!r}")
    size = 1
    for n in shape:
        size *= int(n)
    if size > MAX_SEED_ELEMENTS:
        raise ValueError(f"shape {tuple(shape)} holds {size} values per seed, over {MAX_SEED_ELEMENTS}")
    shape = tuple(int(n) for n in shape)
    seeds = [torch.randn(shape, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float32) for s in ints]
    return torch.stack(seeds).to(device=device, dtype=dtype)
