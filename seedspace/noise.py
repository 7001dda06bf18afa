"""Seeds from integers: N(0, I) noise drawn with a CPU ``torch.Generator`` per integer, so every device (and
ComfyUI's KSampler, for a batch-1 latent) gets the same noise for the same integer. Needs torch alone."""

from __future__ import annotations

from typing import Sequence

import torch


def seeds_from_ints(seed_ints: Sequence[int], shape: Sequence[int], dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """One N(0, I) seed per integer, drawn with a CPU ``torch.Generator`` (so every device gets the same noise)."""
    seeds = []
    for s in seed_ints:
        if not 0 <= int(s) < 2 ** 63:
            raise ValueError(f"seed integers must be in [0, 2^63), got {s}")
        seeds.append(torch.randn(tuple(shape), generator=torch.Generator().manual_seed(int(s)), dtype=torch.float32))
    return torch.stack(seeds).to(device=device, dtype=dtype)
