"""The published NAO optimisation (Samuel et al., arXiv 2306.08687), for comparison only.

Paths are ``n`` points in ``R^d`` whose ``n - 2`` interior points are optimised with Adam on

    loss = sum_j |x_{j+1} - x_j| w(|(x_j + x_{j+1}) / 2|) + lambda sum_j relu(|x_{j+1} - x_j| - eps),

``eps = 2 |a - b| / n``, lambda = 1, lr = 0.01, starting from the chord plus U(0, 0.01) noise, until
the loss changes by less than ``tol`` ``patience`` times in a row (at most ``max_steps`` steps).
The centroid variant optimises the centre ``c`` (start: Euclidean mean) jointly with the k paths
``c -> x_i`` and adds ``w(|c|)`` to the loss.  Runs in float32 on the input's device, like the original.
"""

from __future__ import annotations

from typing import Tuple

import torch

from .prior import ChiPrior

LAMBDA = 1.0
LR = 0.01
MAX_STEPS = 10_000


def _weight(r: torch.Tensor, prior: ChiPrior) -> torch.Tensor:
    return -((prior.d - 1) * torch.log(r) - 0.5 * r * r - prior.log_normalizer)


def _optimise(starts: torch.Tensor, ends: torch.Tensor, n: int, free_start: bool, tol: float, patience: int,
              max_steps: int, seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Optimise k paths ``starts[i] -> ends[i]`` (k, D); with ``free_start`` all paths share one optimised start."""
    dev = ends.device
    dtype = torch.float32
    a = starts.to(dtype)
    b = ends.to(dtype)
    prior = ChiPrior(b.shape[1])
    gen = torch.Generator().manual_seed(seed)
    t = torch.linspace(0.0, 1.0, n, dtype=dtype, device=dev)[1:-1, None]
    noise = torch.rand((b.shape[0], n - 2, b.shape[1]), generator=gen, dtype=dtype).to(dev) * 0.01
    interior = (a[:, None] + t * (b - a)[:, None] + noise).requires_grad_(True)
    eps = 2.0 * torch.linalg.vector_norm(b - a, dim=1, keepdim=True) / n
    params = [interior]
    centre = None
    if free_start:
        centre = a[0].clone().requires_grad_(True)
        params.append(centre)
    opt = torch.optim.Adam(params, lr=LR)

    def assemble():
        first = centre.expand_as(a) if free_start else a
        return torch.cat([first[:, None], interior, b[:, None]], dim=1)

    prev, calm = None, 0
    for _ in range(max_steps):
        opt.zero_grad()
        pts = assemble()
        seg = torch.linalg.vector_norm(pts[:, 1:] - pts[:, :-1], dim=2)
        mid = torch.linalg.vector_norm((pts[:, 1:] + pts[:, :-1]) / 2, dim=2)
        loss = (seg * _weight(mid, prior)).sum() + LAMBDA * torch.relu(seg - eps).sum()
        if free_start:
            loss = loss + _weight(torch.linalg.vector_norm(centre), prior)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        calm = calm + 1 if prev is not None and abs(value - prev) < tol else 0
        prev = value
        if calm >= patience:
            break
    with torch.no_grad():
        pts = assemble().detach()
    return pts, (centre.detach() if free_start else pts[0, 0])


def reference_path(a: torch.Tensor, b: torch.Tensor, n: int, max_steps: int = MAX_STEPS, seed: int = 0) -> torch.Tensor:
    """Published NAO path between flat seeds ``a``, ``b`` (D,): (n, D) float32 (stops on |dloss| < 1e-3 x10)."""
    pts, _ = _optimise(a[None], b[None], n, False, 1e-3, 10, max_steps, seed)
    return pts[0]


def reference_centroid(seeds: torch.Tensor, n: int, max_steps: int = MAX_STEPS, seed: int = 0):
    """Published NAO centroid of flat seeds (k, D): returns (centre (D,), paths (k, n, D)), float32
    (stops on |dloss| < 1e-2 x5)."""
    start = seeds.mean(dim=0, keepdim=True).expand_as(seeds)
    pts, centre = _optimise(start, seeds, n, True, 1e-2, 5, max_steps, seed)
    return centre, pts
