"""True NAO energy of a polyline: ``sum_j int_0^1 w(|x_j + s (x_{j+1} - x_j)|) |x_{j+1} - x_j| ds``."""

from __future__ import annotations

import numpy as np
import torch

from ._tensors import as_tensor, restore_values
from .prior import ChiPrior, NormPrior
from .prior_io import resolve_prior

_SUB = 8  # graded sub-intervals on each side of a segment's closest approach to the origin
_GRADE = (np.arange(_SUB + 1) / _SUB) ** 3
_X, _W = np.polynomial.legendre.leggauss(8)


def _nodes_and_weights():
    """Quadrature on [0, 1] for integrands with a possible log singularity at 0 (cubic grading)."""
    lo, hi = _GRADE[:-1, None], _GRADE[1:, None]
    x = lo + (hi - lo) * (_X + 1) / 2
    wts = (hi - lo) * _W / 2
    return x.ravel(), wts.ravel()


_T, _TW = _nodes_and_weights()


def _log_primitive(t: np.ndarray, p: np.ndarray, L: np.ndarray) -> np.ndarray:
    """``G(t) = int log(p^2 + L^2 t^2) dt = t log(p^2 + L^2 t^2) - 2 t + (2 p / L) atan(L t / p)`` (p >= 0, L > 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        q = p * p + (L * t) ** 2
        tlog = np.where(t == 0, 0.0, t * np.log(np.where(q > 0, q, 1.0)))
        tlog = np.where((q == 0) & (t != 0), -np.inf, tlog)
        at = np.where(p > 0, 2 * p / L * np.arctan(L * t / np.where(p > 0, p, 1.0)), 0.0)
    return tlog - 2 * t + at


def segment_energies(sq_start: np.ndarray, cross: np.ndarray, sq_len: np.ndarray, prior: NormPrior) -> np.ndarray:
    """Energies of segments given ``|x_j|^2``, ``x_j . dx_j`` and ``|dx_j|^2`` (arrays of one shape).

    ``|x(s)|^2 = r_perp^2 + (s - s_c)^2 |dx|^2`` with ``s_c`` the closest approach to the origin.  Segments
    passing close to the origin (where ``w`` has a log singularity) are integrated in closed form for the chi
    family (``w = c - a log r + b r^2/2``);
    the others with Gauss-Legendre on sub-intervals graded towards ``s* = clip(s_c, 0, 1)``.
    """
    length = np.sqrt(sq_len)
    safe = np.where(sq_len > 0, sq_len, 1.0)
    s_closest = -cross / safe  # unclipped parameter of the closest approach to the origin
    r_perp2 = np.maximum(sq_start + cross * s_closest, 0.0)
    s_star = np.where(sq_len > 0, np.clip(s_closest, 0.0, 1.0), 0.0)
    total = np.zeros(np.shape(sq_start))
    for sign, side_len in ((-1.0, s_star), (1.0, 1.0 - s_star)):  # both sides of s*, graded towards s*
        s = s_star[..., None] + sign * side_len[..., None] * _T
        r = np.sqrt(r_perp2[..., None] + (s - s_closest[..., None]) ** 2 * sq_len[..., None])
        with np.errstate(invalid="ignore"):  # a zero-length side may sit on the origin: inf * 0
            w = -prior._log_prob(r)
            total = total + np.where(side_len > 0, side_len * (w @ _TW), 0.0)
    near = (r_perp2 < sq_len) & (s_closest > -1.0) & (s_closest < 2.0) & (sq_len > 0)
    if isinstance(prior, ChiPrior) and near.any():  # w = -a/2 log r^2 + b r^2/2 + c, integrated exactly
        a, b, c = prior.weight_coefficients
        p, L, sc = np.sqrt(r_perp2[near]), length[near], s_closest[near]
        log_part = _log_primitive(1.0 - sc, p, L) - _log_primitive(-sc, p, L)
        mean_r2 = sq_start[near] + cross[near] + sq_len[near] / 3.0
        total[near] = -a / 2.0 * log_part + b * (mean_r2 / 2.0) + c
    return np.where(sq_len > 0, total * length, 0.0)


def path_energy(path, batched: bool = False, *, prior=None):
    """NAO energy of a polyline, ``sum_j int w(|x|) ds`` over its straight segments (fine graded
    Gauss-Legendre quadrature; only O(n d) dot products touch the d-dimensional data).

    ``path``: (n, *seed_shape), or (n, B, *seed_shape) with ``batched=True`` -> one energy per column.
    ``prior``: the norm prior of ``w = -log p`` (default chi(d); anything :func:`load_prior` takes).
    Returns a float, or float64 values of length B (numpy for numpy input, else a tensor on the input device).
    """
    t, spec = as_tensor(path, "path")
    if t.dim() < (2 if batched else 1) or t.shape[0] < 2:
        raise ValueError(f"path must have shape (n >= 2, {'B, ' if batched else ''}*seed_shape), got {tuple(t.shape)}")
    n = t.shape[0]
    P = t.reshape(n, t.shape[1] if batched else 1, -1)
    B, D = P.shape[1], P.shape[2]
    if D == 0:
        raise ValueError("path has seed dimension 0")
    sq_start, cross, sq_len = (torch.empty((n - 1, B), dtype=torch.float64, device=P.device) for _ in range(3))
    cols = max(1, (1 << 22) // (n * D))  # columns converted to float64 at a time
    for c in range(0, B, cols):
        sl = slice(c, min(c + cols, B))
        chunk = P[:, sl].to(torch.float64)
        start, step = chunk[:-1], chunk[1:] - chunk[:-1]
        sq_start[:, sl] = (start * start).sum(-1)
        cross[:, sl] = (start * step).sum(-1)
        sq_len[:, sl] = (step * step).sum(-1)
    if not bool(torch.isfinite(sq_start).all() & torch.isfinite(sq_len).all()):
        raise ValueError("path contains non-finite values (nan or inf)")
    sq_start, cross, sq_len = sq_start.cpu().numpy(), cross.cpu().numpy(), sq_len.cpu().numpy()
    values = segment_energies(sq_start, cross, sq_len, resolve_prior(prior, D)).sum(axis=0)
    return restore_values(values, spec) if batched else float(values[0])
