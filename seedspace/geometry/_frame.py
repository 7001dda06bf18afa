"""Reduction of pairs of seeds to the plane each pair spans (the d-dimensional part of the solvers).

Only a few O(d) reductions per pair (norms, angle) and the final O(steps d) lift touch the
d-dimensional data; both stream over the rows in chunks so that float16/float32 inputs are
accumulated in float64 without materialising a float64 copy of a large batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._tensors import check_norms

_CHUNK = 1 << 22  # elements per chunk of rows converted to float64
#: above this angle the two-vector form of the lift is ill-conditioned (1/sin(phi)); use a basis
_NEAR_OPPOSITE = np.pi - 0.1


@dataclass
class PairStats:
    """Norms, angle and Euclidean distance of B pairs (float64 numpy)."""

    norm_a: np.ndarray
    norm_b: np.ndarray
    phi: np.ndarray  # in [0, pi]
    euclidean: np.ndarray  # uninitialised unless requested


def angle_from_chord(chord):
    """Angle between unit vectors from their chord ``|u - v|``: ``2 asin(|u - v| / 2)`` (accurate at 0 and pi)."""
    if isinstance(chord, torch.Tensor):
        return 2.0 * torch.asin(torch.clamp(chord / 2.0, 0.0, 1.0))
    return 2.0 * np.arcsin(np.clip(chord / 2.0, 0.0, 1.0))


def _chunks(B: int, D: int):
    rows = max(1, _CHUNK // D)
    return [slice(s, min(s + rows, B)) for s in range(0, B, rows)]


def pair_stats(a: torch.Tensor, b: torch.Tensor, euclidean: bool = False) -> PairStats:
    """Norms, angle (and with ``euclidean`` the distance) of the pairs ``(a[i], b[i])`` of (B, D) tensors,
    accumulated in float64; raises ValueError for non-finite or zero-norm seeds."""
    B, D = a.shape
    na, nb, chord, dist = (torch.empty(B, dtype=torch.float64, device=a.device) for _ in range(4))
    for sl in _chunks(B, D):
        a64, b64 = a[sl].to(torch.float64), b[sl].to(torch.float64)
        na[sl] = torch.linalg.vector_norm(a64, dim=1)
        nb[sl] = torch.linalg.vector_norm(b64, dim=1)
        check_norms(na[sl], "a")
        check_norms(nb[sl], "b")
        chord[sl] = torch.linalg.vector_norm(a64 / na[sl, None] - b64 / nb[sl, None], dim=1)
        if euclidean:
            dist[sl] = torch.linalg.vector_norm(a64 - b64, dim=1)
    to_np = lambda t: t.cpu().numpy()  # noqa: E731
    return PairStats(to_np(na), to_np(nb), angle_from_chord(to_np(chord)), to_np(dist))


def fallback_axis(e1: torch.Tensor) -> torch.Tensor:
    """Deterministic unit vector orthogonal to each row of ``e1`` (B, D), D >= 2: the coordinate axis
    least aligned with ``e1`` (first such index), Gram-Schmidt-orthogonalised against it."""
    k = torch.argmin(e1.abs(), dim=1)
    v = -e1 * e1.gather(1, k[:, None])
    v.scatter_add_(1, k[:, None], torch.ones_like(k[:, None], dtype=e1.dtype))
    return v / torch.linalg.vector_norm(v, dim=1, keepdim=True)


def plane_basis(a: torch.Tensor, b: torch.Tensor):
    """Orthonormal ``e1 = a/|a|``, ``e2`` with ``b = |b| (cos(phi) e1 + sin(phi) e2)``, float64 (B, D).
    If ``b`` is (anti-)parallel to ``a`` the plane is not unique and ``e2 = fallback_axis(e1)``."""
    a64, b64 = a.to(torch.float64), b.to(torch.float64)
    e1 = a64 / torch.linalg.vector_norm(a64, dim=1, keepdim=True)
    ub = b64 / torch.linalg.vector_norm(b64, dim=1, keepdim=True)
    v = ub - (ub * e1).sum(dim=1, keepdim=True) * e1
    nv = torch.linalg.vector_norm(v, dim=1, keepdim=True)
    degenerate = nv[:, 0] < 1e-12
    e2 = v / torch.where(degenerate[:, None], torch.ones_like(nv), nv)
    if bool(degenerate.any()):
        e2[degenerate] = fallback_axis(e1[degenerate])
    return e1, e2


def lift(c1: np.ndarray, v1: torch.Tensor, c2: np.ndarray, v2: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``out[t, i] = c1[t, i] * v1[i] + c2[t, i] * v2[i]``: shape (steps, B, D), computed in ``dtype`` on v1's device.

    On the CPU the output is written in cache-sized blocks (rows outer, steps inner) so that it is
    streamed to memory once; elsewhere two whole-tensor kernels are used.
    """
    dev = v1.device
    steps, B = c1.shape
    D = v1.shape[1]
    coef = lambda c: torch.tensor(np.asarray(c), dtype=dtype, device=dev)[:, :, None]  # noqa: E731
    k1, k2 = coef(c1), coef(c2)
    out = torch.empty((steps, B, D), dtype=dtype, device=dev)
    if dev.type != "cpu" or steps * B * D < _CHUNK:
        torch.mul(v1.to(dtype)[None], k1, out=out)
        out.addcmul_(v2.to(dtype)[None], k2)
        return out
    rows = max(1, (1 << 17) // D)  # ~0.5-1 MB of output per block
    for s in range(0, B, rows):
        sl = slice(s, min(s + rows, B))
        w1, w2 = v1[sl].to(dtype), v2[sl].to(dtype)
        for t in range(steps):
            blk = out[t, sl]
            torch.mul(w1, k1[t, sl], out=blk)
            blk.addcmul_(w2, k2[t, sl])
    return out


def lift_polar(r: np.ndarray, theta: np.ndarray, a: torch.Tensor, b: torch.Tensor, stats: PairStats,
               dtype: torch.dtype) -> torch.Tensor:
    """Points ``r (cos(theta) e1 + sin(theta) e2)`` of each pair's plane, (steps, B, D) in ``dtype``.

    Written as ``c_a a + c_b b`` with ``c_a = r sin(phi - theta) / (|a| sin phi)``, ``c_b = r sin(theta) / (|b| sin phi)``
    (no basis vectors needed); near-opposite pairs, where that form is ill-conditioned, use an explicit basis.
    """
    phi = stats.phi[None, :]
    sin = np.sin(phi)
    parallel = phi < 1e-12
    safe = np.where(parallel, 1.0, sin)
    ca = np.where(parallel, r, r * np.sin(phi - theta) / safe) / stats.norm_a
    cb = np.where(parallel, 0.0, r * np.sin(theta) / safe) / stats.norm_b
    same = parallel & (stats.norm_a == stats.norm_b)  # identical endpoints: constant path
    ca, cb = np.where(same, 1.0, ca), np.where(same, 0.0, cb)
    out = lift(ca, a, cb, b, dtype)
    opposite = np.flatnonzero(stats.phi > _NEAR_OPPOSITE)
    if opposite.size:
        sel = torch.from_numpy(opposite).to(a.device)
        e1, e2 = plane_basis(a[sel], b[sel])
        out[:, sel] = lift(r[:, opposite] * np.cos(theta[:, opposite]), e1, r[:, opposite] * np.sin(theta[:, opposite]),
                           e2, dtype)
    return out
