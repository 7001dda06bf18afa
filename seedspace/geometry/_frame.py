"""Reduction of a pair of seeds to the plane they span (the d-dimensional part of the NAO solver)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch


@dataclass
class PairFrame:
    """Norms and angle of B pairs, and (optionally) an orthonormal basis ``e1, e2`` of each pair's plane
    with ``a = |a| e1`` and ``b = |b| (cos(phi) e1 + sin(phi) e2)``."""

    norm_a: np.ndarray  # (B,)
    norm_b: np.ndarray  # (B,)
    phi: np.ndarray  # (B,) in [0, pi]
    e1: Optional[torch.Tensor] = None  # (B, D) float64, input device
    e2: Optional[torch.Tensor] = None


def angle_from_chord(chord: torch.Tensor) -> torch.Tensor:
    """Angle between unit vectors from their chord length ``|u - v|``: ``2 asin(|u - v| / 2)`` (accurate at 0 and pi)."""
    return 2.0 * torch.asin(torch.clamp(chord / 2.0, 0.0, 1.0))


def fallback_axis(e1: torch.Tensor) -> torch.Tensor:
    """Deterministic unit vector orthogonal to each row of ``e1`` (B, D), D >= 2: the coordinate axis
    least aligned with ``e1`` (first such index), Gram-Schmidt-orthogonalised against it."""
    k = torch.argmin(e1.abs(), dim=1)
    v = -e1 * e1.gather(1, k[:, None])
    v.scatter_add_(1, k[:, None], torch.ones_like(k[:, None], dtype=e1.dtype))
    return v / torch.linalg.vector_norm(v, dim=1, keepdim=True)


def pair_frame(a: torch.Tensor, b: torch.Tensor, basis: bool = False) -> PairFrame:
    """Frame of the pairs ``(a[i], b[i])`` for float64 (B, D) tensors with non-zero rows.

    When ``b`` is (anti-)parallel to ``a`` the plane is not unique; ``e2`` is then
    :func:`fallback_axis` of ``e1``.
    """
    na = torch.linalg.vector_norm(a, dim=1)
    nb = torch.linalg.vector_norm(b, dim=1)
    ua = a / na[:, None]
    ub = b / nb[:, None]
    phi = angle_from_chord(torch.linalg.vector_norm(ua - ub, dim=1))
    frame = PairFrame(norm_a=na.cpu().numpy(), norm_b=nb.cpu().numpy(), phi=phi.cpu().numpy())
    if basis:
        v = ub - (ub * ua).sum(dim=1, keepdim=True) * ua
        nv = torch.linalg.vector_norm(v, dim=1, keepdim=True)
        degenerate = (nv[:, 0] < 1e-12)
        e2 = v / torch.where(degenerate[:, None], torch.ones_like(nv), nv)
        if bool(degenerate.any()) and a.shape[1] > 1:
            e2[degenerate] = fallback_axis(ua[degenerate])
        frame.e1, frame.e2 = ua, e2
    return frame


def lift(c1: np.ndarray, v1: torch.Tensor, c2: np.ndarray, v2: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``out[t, i] = c1[t, i] * v1[i] + c2[t, i] * v2[i]``: shape (steps, B, D), computed in ``dtype`` on v1's device."""
    dev = v1.device
    steps, B = c1.shape
    out = torch.empty((steps, B, v1.shape[1]), dtype=dtype, device=dev)
    torch.mul(v1.to(dtype)[None], torch.from_numpy(np.ascontiguousarray(c1)).to(dev, dtype)[:, :, None], out=out)
    out.addcmul_(v2.to(dtype)[None], torch.from_numpy(np.ascontiguousarray(c2)).to(dev, dtype)[:, :, None])
    return out
