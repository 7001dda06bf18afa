"""Interpolation between seeds: NAO geodesics and the usual baselines."""

from __future__ import annotations

import numpy as np
import torch

from . import planar
from ._frame import lift, lift_polar, pair_stats
from ._tensors import as_tensor, check_choice, check_grid, check_same_shape, check_steps, flat_seeds, restore, work_dtype
from .prior_io import resolve_prior
from .reference import reference_path

INTERPOLATION_METHODS = ("nao", "slerp", "lerp", "cog", "reference")
SPACINGS = ("euclidean", "nao", "angle")
DEFAULT_STEPS = 50


def _t(steps: int, B: int) -> np.ndarray:
    return np.broadcast_to(np.linspace(0.0, 1.0, steps)[:, None], (steps, B))


def _lerp(a, b, steps, wd, **_):
    t = _t(steps, a.shape[0])
    return lift(1.0 - t, a, t, b, wd)


def _cog(a, b, steps, wd, **_):
    t = _t(steps, a.shape[0])
    s = np.sqrt((1.0 - t) ** 2 + t**2)
    return lift((1.0 - t) / s, a, t / s, b, wd)


def _slerp(a, b, steps, wd, stats, **_):
    t = _t(steps, a.shape[0])
    phi = stats.phi[None, :]
    sin = np.sin(phi)
    ok = sin > 1e-6  # (anti-)parallel: fall back to lerp
    safe = np.where(ok, sin, 1.0)
    ca = np.where(ok, np.sin((1.0 - t) * phi) / safe, 1.0 - t)
    cb = np.where(ok, np.sin(t * phi) / safe, t)
    return lift(ca, a, cb, b, wd)


def nao_curve(a: torch.Tensor, b: torch.Tensor, steps: int, spacing: str, grid: int, wd: torch.dtype,
              stats=None, fractions: np.ndarray | None = None, prior=None) -> torch.Tensor:
    """NAO geodesics for flat pairs (B, D): solve in each pair's plane, sample (evenly, or at ``fractions``
    of the ``spacing`` length), lift -> (steps, B, D).  ``prior``: a NormPrior (None: chi(D))."""
    if a.shape[1] == 1:  # on the line the only path is the segment
        if fractions is not None:
            raise ValueError("fractions need d >= 2")
        return _lerp(a, b, steps, wd)
    stats = pair_stats(a, b) if stats is None else stats
    prior = resolve_prior(prior, a.shape[1])
    sol = planar.solve(np.log(stats.norm_a), np.log(stats.norm_b), stats.phi, prior, grid=grid)
    r, theta = planar.sample(sol, steps, spacing, prior, fractions)
    return lift_polar(r, theta, a, b, stats, wd)


def _nao(a, b, steps, wd, spacing, grid, stats, prior):
    return nao_curve(a, b, steps, spacing, grid, wd, stats, prior=prior)


def _reference(a, b, steps, wd, **_):
    paths = [reference_path(a[i].to(torch.float64), b[i].to(torch.float64), steps) for i in range(a.shape[0])]
    return torch.stack(paths, dim=1).to(wd)


_METHODS = {"nao": _nao, "slerp": _slerp, "lerp": _lerp, "cog": _cog, "reference": _reference}


def interpolate(a, b, steps: int = DEFAULT_STEPS, method: str = "nao", spacing: str = "euclidean",
                batched: bool = False, *, grid: int = planar.DEFAULT_GRID, prior=None):
    """Path of ``steps`` seeds from ``a`` to ``b`` (shape (steps, *a.shape); ``path[0] == a``, ``path[-1] == b``).

    ``nao``: geodesic of the metric ``w(|x|) |dx|`` with ``w = -log p(|x|)`` (minimises ``int w ds``; ``prior``
    gives p: chi(d) by default, or a NormPrior, ``"scaled-chi:S"``, a prior file), solved exactly in span(a, b); points evenly spaced by ``spacing`` ("euclidean"
    arc length, "nao" energy, or "angle").  Baselines with t evenly spaced in [0, 1]:
    ``lerp`` (1-t) a + t b; ``slerp`` spherical interpolation; ``cog`` ((1-t) a + t b) / sqrt((1-t)^2 + t^2);
    ``reference`` the published Adam optimisation (slow).  ``batched=True``: a, b are (B, *seed_shape),
    result (steps, B, *seed_shape), all pairs solved together.  ``grid``: pieces of the 2-D solver.
    """
    check_choice(method, INTERPOLATION_METHODS, "interpolation method")
    check_choice(spacing, SPACINGS, "spacing")
    grid = check_grid(grid)
    ta, spec = as_tensor(a, "a")
    tb, _ = as_tensor(b, "b")
    check_same_shape(ta, tb)
    steps = check_steps(steps, ta.numel())
    tb = tb.to(ta.device)
    fa = flat_seeds(ta, "a", batched)
    fb = flat_seeds(tb, "b", batched)
    stats = pair_stats(fa, fb)  # also rejects zero-norm seeds
    prior = resolve_prior(prior, fa.shape[1])
    out = _METHODS[method](fa, fb, steps, work_dtype(spec.dtype), spacing=spacing, grid=grid, stats=stats, prior=prior)
    out = out.to(spec.dtype)
    out[0] = ta.reshape(fa.shape)
    out[-1] = tb.reshape(fb.shape).to(spec.dtype)
    return restore(out.reshape((steps, *ta.shape)), spec)


DENSE_PER_FRAME = 32  # dense path samples per frame interval when positions are off the uniform grid


def path_at(a: torch.Tensor, b: torch.Tensor, positions: np.ndarray, method: str, prior=None) -> torch.Tensor:
    """Seeds at path positions t in [0, 1] (arc-length fractions for NAO; any order, repeats allowed) of the path
    ``interpolate(a, b, method=method)``: exact on a uniform grid, otherwise
    resampled from a dense path (linear between neighbouring dense points, which are very close). ``prior``: the
    NAO norm prior (a record or object; None: chi(d))."""
    positions = np.asarray(positions, dtype=np.float64).ravel()
    if positions.size == 0 or not np.isfinite(positions).all() or (positions < 0).any() or (positions > 1).any():
        raise ValueError(f"path positions must be numbers in [0, 1], got {positions.tolist()}")
    n = len(positions)
    uniform = np.linspace(0.0, 1.0, n)
    if n >= 2 and np.allclose(positions, uniform, rtol=0, atol=1e-12) and positions[0] == 0 and positions[-1] == 1:
        return interpolate(a, b, steps=n, method=method, prior=prior)
    dense_n = DENSE_PER_FRAME * max(n - 1, 1) + 1
    dense = interpolate(a, b, steps=dense_n, method=method, prior=prior).double()
    x = positions * (dense_n - 1)
    k = np.minimum(np.floor(x).astype(int), dense_n - 2)
    frac = torch.from_numpy(x - k).reshape(-1, *([1] * a.dim()))
    out = dense[k] * (1 - frac) + dense[k + 1] * frac
    return out.to(a.dtype)
