"""Centroids of a set of seeds: the NAO centroid and the usual baselines.

Every centroid here lies in ``span(x_1..x_k)``, so it is computed as ``c = sum_i alpha_i x_i`` from the
Gram matrix ``G = X X^T`` alone (``|c|^2 = alpha^T G alpha``, ``c . x_i = (G alpha)_i``): the
d-dimensional work is one ``O(k^2 d)`` product and the final ``O(k d)`` lift.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import minimize, minimize_scalar

from . import planar
from ._tensors import as_tensor, check_choice, check_grid, check_steps, flat_seeds64, restore, work_dtype
from .energy import segment_energies
from .paths import DEFAULT_STEPS, nao_curve
from .prior import NormPrior
from .prior_io import resolve_prior
from .reference import reference_centroid

CENTROID_METHODS = ("nao", "euclidean", "normalized", "spherical", "cog", "reference")
_BASELINES = ("euclidean", "normalized", "spherical", "cog")


def _spherical_coefficients(G: np.ndarray, max_iter: int = 200) -> np.ndarray:
    """Karcher (Frechet) mean of the directions ``x_i/|x_i|`` on the unit sphere by the fixed-point
    iteration ``p <- exp_p(mean_i log_p(x_i))``, in Gram coordinates: returns beta with ``p = sum beta_i x_i/|x_i|``."""
    nx = np.sqrt(np.diag(G))
    Gh = G / np.outer(nx, nx)
    k = len(nx)
    beta = np.full(k, 1.0 / k)
    norm = math.sqrt(max(beta @ Gh @ beta, 0.0))
    if norm < 1e-8:  # directions cancel: start from the first one
        beta, norm = np.eye(k)[0], 1.0
    beta = beta / norm
    for _ in range(max_iter):
        cos = np.clip(Gh @ beta, -1.0, 1.0)
        theta = np.arccos(cos)
        f = np.where(theta > 1e-12, theta / np.sin(np.maximum(theta, 1e-300)), 1.0)
        v = f / k - (f * cos).sum() / k * beta  # tangent vector mean_i log_p(x_i)
        nv = math.sqrt(max(v @ Gh @ v, 0.0))
        if nv < 1e-13:
            break
        beta = math.cos(nv) * beta + math.sin(nv) / nv * v
        beta = beta / math.sqrt(beta @ Gh @ beta)
    return beta / nx


def _baseline_coefficients(G: np.ndarray, method: str, prior: NormPrior) -> np.ndarray:
    """alpha with ``c = sum alpha_i x_i`` for: euclidean mean; normalized = mean rescaled to the prior's
    mode (chi: sqrt(d-1)); spherical = Karcher mean of the directions rescaled to the mode; cog = sum / sqrt(k)."""
    k = G.shape[0]
    if method == "euclidean":
        return np.full(k, 1.0 / k)
    if method == "cog":
        return np.full(k, 1.0 / math.sqrt(k))
    alpha = np.full(k, 1.0 / k) if method == "normalized" else _spherical_coefficients(G)
    norm = math.sqrt(max(alpha @ G @ alpha, 0.0))
    return alpha * (prior.mode / norm) if norm > 0 else alpha


class _Objective:
    """``f = sum_i dist_nao(c, x_i) + w(|c|)`` (the NAO centroid) or, with ``weights``, ``f = sum_i weights_i
    dist_nao(c, x_i)^2`` (the weighted Frechet mean), from ``c . x_i``, ``|c|`` and the Gram matrix of the seeds."""

    def __init__(self, G: np.ndarray, prior: NormPrior, grid: int, weights: np.ndarray | None = None):
        self.G, self.prior, self.grid, self.weights = G, prior, grid, weights
        self.nx = np.sqrt(np.diag(G))
        self.sol = None  # last 2-D solution: its grids and profiles warm-start the next solve

    def _angles(self, cx: np.ndarray, rc: np.ndarray):
        """Angles between c and each x_i (and their sines times |c||x_i|) from dot products."""
        perp = np.sqrt(np.maximum((rc[..., None] * self.nx) ** 2 - cx**2, 0.0))
        return np.arctan2(perp, cx), perp

    def values(self, cx: np.ndarray, rc: np.ndarray) -> np.ndarray:
        """Objective of n candidates given ``cx[n, i] = c . x_i`` and ``rc[n] = |c|`` (fresh adaptive solve).
        The 2-D solutions of every candidate are kept (``self.solutions``) to warm-start :meth:`minimise`."""
        n, k = cx.shape
        if self.prior.d == 1:  # on the line the paths are segments
            r2 = rc[:, None] ** 2
            e = segment_energies(r2 + 0 * cx, cx - r2, self.nx**2 + r2 - 2 * cx, self.prior)
        else:
            phi, _ = self._angles(cx, rc)
            u0 = np.repeat(np.log(rc), k)
            um = np.tile(np.log(self.nx), n)
            sol = planar.solve(u0, um, phi.ravel(), self.prior, grid=self.grid)
            e = sol.energy.reshape(n, k)
            self.solutions = [planar.take(sol, np.arange(i * k, (i + 1) * k)) for i in range(n)]
        if self.weights is not None:
            return (self.weights * e**2).sum(axis=1)
        return e.sum(axis=1) + self.prior.weight(rc)

    def bounds(self, alphas: np.ndarray):
        """Cheap lower and upper bounds of the objective of candidates (n, k): any path from c to x_i
        costs at least ``|int_{|c|}^{|x_i|} w dr|``; the log-spiral with u linear in theta costs at most its energy."""
        cx = alphas @ self.G
        rc = np.sqrt(np.maximum((alphas * cx).sum(axis=1), 0.0))
        u0 = np.broadcast_to(np.log(rc)[:, None], cx.shape)
        um = np.broadcast_to(np.log(self.nx), cx.shape)
        lower = np.abs(self.prior.primitive_difference(u0, um)).sum(axis=1)
        phi, _ = self._angles(cx, rc)
        tau = planar.uniform_grid(cx.size, self.grid)
        upper = planar.energy(planar.linear_profile(u0.ravel(), um.ravel(), tau), tau, phi.ravel(), self.prior)
        w = self.prior.weight(rc)
        return lower + w, upper.reshape(cx.shape).sum(axis=1) + w

    def values_alpha(self, alphas: np.ndarray) -> np.ndarray:
        """Objective of candidates ``c = sum_i alphas[n, i] x_i``."""
        cx = alphas @ self.G
        return self.values(cx, np.sqrt(np.maximum((alphas * cx).sum(axis=1), 0.0)))

    def value_and_grad(self, alpha: np.ndarray):
        """Objective and gradient in alpha (envelope theorem), with the 2-D grids held fixed."""
        Ga = self.G @ alpha
        rc = math.sqrt(max(alpha @ Ga, 0.0))
        if not rc > 0:
            return np.inf, np.zeros_like(alpha)
        phi, perp = self._angles(Ga, np.asarray(rc))
        old = self.sol
        u0, um = np.full(len(alpha), math.log(rc)), np.log(self.nx)
        shift = (u0 - old.u[:, 0])[:, None] * (1 - old.tau) + (um - old.u[:, -1])[:, None] * old.tau
        sol = self.sol = planar.newton(u0, um, phi, self.prior, old.tau, old.u + shift)
        if self.weights is None:
            f, dw, outer = sol.energy.sum() + float(self.prior.weight(rc)), float(self.prior.weight_derivative(rc)), 1.0
        else:  # d(w_i E_i^2) = 2 w_i E_i dE_i
            f, dw, outer = float((self.weights * sol.energy**2).sum()), 0.0, 2 * self.weights * sol.energy
        # d|c|/d alpha = G alpha / |c|;  d phi_i / d alpha = -(G_i / (|c||x_i|) - cos_i G alpha / |c|^2) / sin_i
        cos = Ga / (rc * self.nx)
        sin = perp / (rc * self.nx)
        coef = np.where(sin > 1e-12, outer * sol.grad_phi / np.where(sin > 1e-12, sin, 1.0), 0.0)
        grad = ((outer * sol.grad_u0).sum() / rc + dw) * Ga / rc
        grad -= self.G @ (coef / (rc * self.nx)) - (coef * cos).sum() * Ga / rc**2
        return f, grad

    def minimise(self, alpha: np.ndarray, sol: planar.PlanarSolution) -> np.ndarray:
        """L-BFGS from ``alpha`` (whose 2-D solutions ``sol`` fix the grids), in variables scaled so that
        a unit step moves ``c`` by about 1% of its norm."""
        self.sol = sol
        scale = 0.01 * math.sqrt(alpha @ self.G @ alpha) / self.nx

        def fun(z):
            f, g = self.value_and_grad(z * scale)
            return f, g * scale

        z = minimize(fun, alpha / scale, jac=True, method="L-BFGS-B", options={"maxiter": 200}).x
        return z * scale

    def minimise_line(self, x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        """d = 1: minimise over the scalar c directly (seeds ``x`` are scalars); returns alpha = (c / x_1) e_1."""
        f = lambda c: float(self.values(np.atleast_2d(c * x), np.atleast_1d(abs(c)))[0])  # noqa: E731
        c0 = float(alpha @ x)
        c = minimize_scalar(f, bracket=(c0, c0 + 0.1 * (abs(c0) + 1.0))).x
        out = np.zeros_like(alpha)
        out[0] = c / x[0]
        return out


def nao_coefficients(G: np.ndarray, prior: NormPrior, grid: int = planar.DEFAULT_GRID, line=None) -> np.ndarray:
    """alpha of the NAO centroid: start at the best baseline, optimise, keep whichever is better
    (so the NAO objective is never above any baseline's).  ``line``: the scalar seeds when d = 1."""
    obj = _Objective(G, prior, grid)
    starts = np.stack([_baseline_coefficients(G, m, prior) for m in _BASELINES])
    starts = starts[np.einsum("ij,jk,ik->i", starts, G, starts) > 0]
    if line is None:
        # skip baselines that provably cannot be best: lower bound (radial part of every path) above
        # an upper bound of another (the un-optimised log-spiral paths)
        lower, upper = obj.bounds(starts)
        keep = lower <= upper.min()
        keep[np.argmin(upper)] = True  # lower <= upper: never drop them all (equal bounds of one seed round apart)
        starts = starts[keep]
    return _optimise_from_best(obj, starts, line)


def _optimise_from_best(obj: _Objective, starts: np.ndarray, line) -> np.ndarray:
    """Evaluate the starts, optimise from the best, return the optimum or that start if it is not better."""
    vals = obj.values_alpha(starts)
    i = int(np.argmin(vals))
    best = starts[i]
    alpha = obj.minimise_line(line, best) if line is not None else obj.minimise(best, obj.solutions[i])
    if not np.all(np.isfinite(alpha)) or alpha @ obj.G @ alpha <= 0:
        return best
    return alpha if obj.values_alpha(alpha[None])[0] <= vals[i] else best


def blend(seeds, weights, *, grid: int = planar.DEFAULT_GRID, prior=None):
    """Weighted NAO blend of seeds (k, *seed_shape) -> seed_shape: the weighted Frechet mean
    ``argmin_c sum_i w_i dist_nao(c, x_i)^2`` (weights >= 0, normalised to sum 1), found in span(x_i).

    For two seeds it is the point at NAO arc-length fraction ``w_2`` along the geodesic from ``x_1`` to ``x_2``
    (the syntax ``1111:0.2|2222:0.8`` of seed-blending tools); a weight of 1 returns that seed exactly.
    ``prior``: the norm prior of the NAO distance (chi(d) by default; anything :func:`load_prior` takes).
    """
    t, spec = as_tensor(seeds, "seeds")
    X = flat_seeds64(t, "seeds", batched=True)
    k, D = X.shape
    try:
        w = np.asarray(torch.as_tensor(weights, dtype=torch.float64).cpu(), dtype=np.float64).ravel()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"weights must be {k} numbers, got {weights!r}") from None
    if w.shape != (k,):
        raise ValueError(f"got {w.size} weights for {k} seeds")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
        raise ValueError(f"weights must be finite, non-negative and not all zero, got {w.tolist()}")
    if not np.isfinite(w.sum()):  # weights near the float limit (1e308): their sum overflows
        w = w / w.max()
    w = w / w.sum()
    if w.max() == 1.0:
        return restore(X[int(np.argmax(w))].reshape(t.shape[1:]), spec)
    grid = check_grid(grid)
    prior = resolve_prior(prior, D)
    G = _gram(X)
    nx = np.sqrt(np.diag(G))
    norm = math.sqrt(max(w @ G @ w, 0.0))
    starts = [w, w * math.exp(w @ np.log(nx)) / norm] if norm > 0 else [w]
    if D > 1:
        # geodesic blending, seed by seed: exact for two seeds, a good start for more
        c, total, used = None, 0.0, 0
        for i in np.flatnonzero(w > 0):
            total += w[i]
            c = X[i:i + 1] if c is None else nao_curve(c, X[i:i + 1], 1, "nao", grid, torch.float64,
                                                       fractions=np.array([[w[i] / total]]), prior=prior)[0]
            used += 1
        if used == 2:
            return restore(c.reshape(t.shape[1:]), spec)
        starts.append(np.linalg.lstsq(G, (X @ c[0]).cpu().numpy(), rcond=None)[0])
    alpha = _optimise_from_best(_Objective(G, prior, grid, w), np.stack(starts),
                                X[:, 0].cpu().numpy() if D == 1 else None)
    return restore((torch.from_numpy(alpha).to(X.device) @ X).reshape(t.shape[1:]), spec)


def _gram(X: torch.Tensor) -> np.ndarray:
    return (X @ X.T).cpu().numpy()


def centroid(seeds, method: str = "nao", return_paths: bool = False, steps: int = DEFAULT_STEPS, *,
             grid: int = planar.DEFAULT_GRID, prior=None):
    """Centre of seeds (k, *seed_shape) -> seed_shape.

    ``nao``: argmin_c sum_i dist_nao(c, x_i) + w(|c|), found in span(x_i) by L-BFGS from the best
    baseline (so its objective is never above theirs); ``w = -log p`` with p the ``prior`` (chi(d) by default;
    anything :func:`load_prior` takes).  Baselines: ``euclidean`` mean; ``normalized``
    mean rescaled to the prior's mode (chi: sqrt(d-1)); ``spherical`` Karcher mean of the directions at the
    mode; ``cog`` sum / sqrt(k); ``reference`` the published joint Adam optimisation (slow).
    ``return_paths=True`` also returns paths c -> x_i, shape (k, steps, *seed_shape): NAO geodesics,
    or the jointly optimised paths for ``reference``.
    """
    check_choice(method, CENTROID_METHODS, "centroid method")
    grid = check_grid(grid)
    t, spec = as_tensor(seeds, "seeds")
    X = flat_seeds64(t, "seeds", batched=True)
    k, D = X.shape
    steps = check_steps(steps, k * D if return_paths else 1)
    wd = work_dtype(spec.dtype)
    prior = resolve_prior(prior, D)
    paths = None
    if method == "reference":
        c, paths = reference_centroid(X, steps)
        c = c.to(torch.float64)
    else:
        G = _gram(X)
        if method == "nao":
            alpha = nao_coefficients(G, prior, grid, line=X[:, 0].cpu().numpy() if D == 1 else None)
        else:
            alpha = _baseline_coefficients(G, method, prior)
        c = torch.from_numpy(alpha).to(X.device) @ X
    out = restore(c.reshape(t.shape[1:]), spec)
    if not return_paths:
        return out
    if paths is None:
        if not bool(torch.linalg.vector_norm(c) > 0):
            raise ValueError("the centroid has zero norm; no paths from it exist")
        paths = nao_curve(c.expand(k, D), X, steps, "euclidean", grid, wd, prior=prior).transpose(0, 1)
        paths[:, 0] = c.to(wd)
        paths[:, -1] = X.to(wd)
    return out, restore(paths.reshape((k, steps, *t.shape[1:])), spec)


def centroid_objective(seeds, c, *, grid: int = planar.DEFAULT_GRID, prior=None) -> float:
    """NAO centroid objective ``sum_i dist_nao(c, x_i) + w(|c|)`` of a candidate centre ``c`` (seed_shape)."""
    t, _ = as_tensor(seeds, "seeds")
    tc, _ = as_tensor(c, "c")
    X = flat_seeds64(t, "seeds", batched=True)
    if tuple(tc.shape) != tuple(t.shape[1:]):
        raise ValueError(f"c must have the seed shape {tuple(t.shape[1:])}, got {tuple(tc.shape)}")
    C = flat_seeds64(tc.to(t.device), "c", batched=False)
    obj = _Objective(_gram(X), resolve_prior(prior, X.shape[1]), check_grid(grid))
    cx = (C @ X.T).cpu().numpy()
    return float(obj.values(cx, torch.linalg.vector_norm(C, dim=1).cpu().numpy())[0])
