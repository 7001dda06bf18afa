"""NAO distances at matrix-multiply speed: the distance as a tabulated function of (|a|, |b|, angle).

The NAO distance depends on a pair only through ``u_a = log|a|``, ``u_b = log|b|`` and the angle ``phi``.  We
write it as ``D = H * R`` with the cheap, exact-in-the-limits envelope

    H = sqrt(dW^2 + (F_m phi)^2),   dW = |int_{|a|}^{|b|} w dr|,   F_m = (F(u_a) + F(u_b)) / 2,  F(u) = r w(r)

(``D = dW`` exactly at ``phi = 0``; ``D ~ F phi`` for close norms) and tabulate the smooth ratio ``R`` (near 1) as
a tensor-product Chebyshev interpolant in ``(u_a, u_b, phi)`` over the norms of the data and ``phi in [0, pi]``,
from the exact solver at the Chebyshev nodes.  The table is checked against the exact solver at random points of
its box and refined until the relative error is below :data:`TABLE_RTOL` (else the caller falls back to the exact
solver).  Evaluating it for a block of rows is ``n_phi`` small matrix products (rows' and columns' u-bases
against the coefficients) and a Clenshaw sum over ``phi``, so the whole matrix costs about one Gram matrix.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch
from scipy.fft import dct

from . import planar
from .prior import NormPrior

#: the error bound the table is built to: |D_table - D_exact| <= TABLE_RTOL * D_exact at every checked point
TABLE_RTOL = 1e-3
_BUILD_RTOL = 2e-4  # refine until the checked error is below this (a margin for points not checked)
_CHECK_POINTS = 256
_SIZES = ((8, 24), (12, 36), (16, 48))  # (nodes in u, nodes in phi) tried in turn
_U_STEP = 1.0 / 32  # table ranges are rounded outward to this grid in log-norm, so nearby data reuse one table
_CACHE: dict = {}
_BLOCK = 1 << 22  # pairs evaluated at once


def _cheb_nodes(n: int, lo: float, hi: float) -> np.ndarray:
    x = np.cos(np.pi * (np.arange(n) + 0.5) / n)
    return (lo + hi) / 2 + (hi - lo) / 2 * x


def _cheb_basis(x: torch.Tensor, n: int) -> torch.Tensor:
    """``T_0..T_{n-1}`` at ``x`` in [-1, 1]: shape (len(x), n)."""
    out = torch.empty((x.shape[0], n), dtype=x.dtype, device=x.device)
    out[:, 0] = 1.0
    if n > 1:
        out[:, 1] = x
    for k in range(2, n):
        out[:, k] = 2 * x * out[:, k - 1] - out[:, k - 2]
    return out


def _cheb_coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients of a tensor-product interpolant from its values at first-kind nodes (DCT-II per axis)."""
    c = values
    for axis in range(values.ndim):
        n = values.shape[axis]
        c = dct(c, type=2, axis=axis) / n
        first = [slice(None)] * values.ndim
        first[axis] = 0
        c[tuple(first)] /= 2
    return c


def _np_env(Pa, Pb, Fa, Fb, phi):
    """``H = sqrt((Pb - Pa)^2 + ((Fa + Fb)/2 phi)^2)``: the cost of the curve straight in (u, theta) for a
    locally constant ``F`` (exact at ``phi = 0``)."""
    return np.sqrt((Pb - Pa) ** 2 + ((Fa + Fb) / 2 * phi) ** 2)


class DistanceTable:
    """The NAO distance of ``prior`` for log-norms in ``[u_lo, u_hi]`` and all angles (see the module docstring)."""

    def __init__(self, prior: NormPrior, u_lo: float, u_hi: float, grid: int, phi_lo: float = 0.0,
                 phi_hi: float = math.pi, sizes=_SIZES, seed: int = 0):
        self.prior, self.u_lo, self.u_hi, self.grid = prior, u_lo, u_hi, grid
        self.phi_lo, self.phi_hi = phi_lo, phi_hi
        # the distance changes shape over about one prior-width of norm around the mode: interpolate in
        # t = asinh((r - mode) / std), in which that region and the far tails get nodes alike
        self._centre, self._width = prior.mode, prior.std
        self.t_lo, self.t_hi = self._t(np.array(u_lo)), self._t(np.array(u_hi))
        self.u_star = prior.cheapest_log_norm  # origin of the primitive W (any point would do)
        rng = np.random.default_rng(seed)
        check = (rng.uniform(u_lo, u_hi, _CHECK_POINTS), rng.uniform(u_lo, u_hi, _CHECK_POINTS),
                 phi_lo + (phi_hi - phi_lo) * rng.beta(0.7, 0.7, _CHECK_POINTS))  # more points near the ends
        exact = planar.solve(*check, prior, grid=grid).energy
        self.error = math.inf
        for n_u, n_phi in sizes:
            self._build(n_u, n_phi)
            got = self.evaluate(*(torch.from_numpy(v) for v in check)).numpy()
            self.error = float(np.max(np.abs(got - exact) / np.maximum(exact, 1e-300)))
            if self.error <= _BUILD_RTOL:
                break

    @property
    def ok(self) -> bool:
        """Whether the checked relative error is within :data:`TABLE_RTOL`."""
        return self.error <= TABLE_RTOL

    def _t(self, u):
        return np.arcsinh((np.exp(u) - self._centre) / self._width)

    def _build(self, n_u: int, n_phi: int) -> None:
        u = np.log(self._centre + self._width * np.sinh(_cheb_nodes(n_u, float(self.t_lo), float(self.t_hi))))
        phi = _cheb_nodes(n_phi, self.phi_lo, self.phi_hi)
        i, j = np.triu_indices(n_u)  # the distance is symmetric in the two norms: solve i <= j only
        ua, ub = np.repeat(u[i], n_phi), np.repeat(u[j], n_phi)
        ph = np.tile(phi, i.size)
        energy = planar.solve(ua, ub, ph, self.prior, grid=self.grid).energy
        ratio = energy / self._envelope(ua, ub, ph)
        R = np.empty((n_u, n_u, n_phi))
        R[i, j] = ratio.reshape(i.size, n_phi)
        R[j, i] = ratio.reshape(i.size, n_phi)
        self.coef = torch.from_numpy(_cheb_coefficients(R))  # (n_u, n_u, n_phi)

    def _envelope(self, ua, ub, phi):
        Pa = self.prior.primitive_difference(np.full_like(ua, self.u_star), ua)
        Pb = self.prior.primitive_difference(np.full_like(ub, self.u_star), ub)
        Fa, Fb = self.prior.f_derivatives(ua, 0)[0], self.prior.f_derivatives(ub, 0)[0]
        return _np_env(Pa, Pb, Fa, Fb, phi)

    def _u_basis(self, u: torch.Tensor) -> torch.Tensor:
        t = torch.asinh((torch.exp(u) - self._centre) / self._width)
        x = ((2 * t - float(self.t_lo + self.t_hi)) / float(self.t_hi - self.t_lo)).clamp(-1.0, 1.0)
        return _cheb_basis(x, self.coef.shape[0])

    def _row_terms(self, u: torch.Tensor):
        """Per-seed quantities: the u-basis (n, n_u), the primitive W(u) - W(u_lo) and F(u) (float64 tensors)."""
        un = u.cpu().numpy()
        W = self.prior.primitive_difference(np.full_like(un, self.u_star), un)
        F = self.prior.f_derivatives(un, 0)[0]
        return self._u_basis(u), torch.from_numpy(W).to(u.device), torch.from_numpy(F).to(u.device)

    def evaluate(self, ua: torch.Tensor, ub: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """Distances of pairs given elementwise (float64 tensors of one shape (B,))."""
        Ba, Wa, Fa = self._row_terms(ua)
        Bb, Wb, Fb = self._row_terms(ub)
        # R = sum_{p,q,s} c_pqs T_p(ua) T_q(ub) T_s(x): contract the u-axes per pair, then the phi axis
        Cs = torch.einsum("bp,pqs,bq->bs", Ba, self.coef.to(ua.device), Bb)
        R = (Cs * _cheb_basis(self._phi_x(phi), Cs.shape[1])).sum(dim=1)
        return R * self._tensor_env(Wa, Wb, Fa, Fb, phi)

    def _phi_x(self, phi):
        return ((2 * phi - (self.phi_lo + self.phi_hi)) / (self.phi_hi - self.phi_lo)).clamp(-1.0, 1.0)

    def _tensor_env(self, Wa, Wb, Fa, Fb, phi):
        return torch.hypot(Wb - Wa, (Fa + Fb) / 2 * phi)

    def matrix(self, norms_a: torch.Tensor, norms_b: torch.Tensor, cos_block) -> torch.Tensor:
        """Distances of all pairs (rows a, columns b): ``cos_block(rows) -> cosines (len(rows), m)`` supplies the
        cosines block by block (so that at most one block of the matrix is held besides the result).  Pairs whose
        angle lies outside the table's are solved exactly."""
        n, m = norms_a.shape[0], norms_b.shape[0]
        out = torch.empty((n, m), dtype=torch.float64, device=norms_a.device)
        Bb, Wb, Fb = self._row_terms(torch.log(norms_b))
        BbT = Bb.T.contiguous()
        coef = self.coef.to(norms_a.device)
        n_phi = coef.shape[2]
        rows = max(1, _BLOCK // max(m, 1))
        for s in range(0, n, rows):
            sl = slice(s, min(s + rows, n))
            Ba, Wa, Fa = self._row_terms(torch.log(norms_a[sl]))
            phi = torch.arccos(cos_block(sl).to(torch.float64).clamp_(-1.0, 1.0))
            x2 = 2 * self._phi_x(phi)  # 2x for Clenshaw
            left = torch.einsum("bp,pqs->sbq", Ba, coef)  # (n_phi, b, n_u)
            b1 = torch.zeros_like(phi)
            b2 = torch.zeros_like(phi)
            for k in range(n_phi - 1, 0, -1):  # Clenshaw: b_k = c_k + 2x b_{k+1} - b_{k+2}
                term = left[k] @ BbT
                term.addcmul_(x2, b1).sub_(b2)
                b2, b1 = b1, term
            R = (left[0] @ BbT).addcmul_(x2 / 2, b1).sub_(b2)
            torch.mul(R, self._tensor_env(Wa[:, None], Wb[None, :], Fa[:, None], Fb[None, :], phi), out=out[sl])
            outside = torch.nonzero((phi < self.phi_lo) | (phi > self.phi_hi))
            if outside.shape[0]:  # angles the table does not cover: the exact solver
                i, j = outside[:, 0], outside[:, 1]
                ua, ub = torch.log(norms_a[sl][i]).cpu().numpy(), torch.log(norms_b[j]).cpu().numpy()
                exact = planar.solve(ua, ub, phi[i, j].cpu().numpy(), self.prior, grid=self.grid).energy
                out[sl][i, j] = torch.from_numpy(exact).to(out.device)
        return out


def _prior_key(prior: NormPrior):
    try:
        return json.dumps(prior.to_record(), sort_keys=True, default=str)
    except NotImplementedError:  # a custom density without a record: not cached
        return None


def table_for(prior: NormPrior, norms: np.ndarray, grid: int, phi_range=(0.0, math.pi)) -> DistanceTable:
    """The table of ``prior`` covering the log of ``norms`` (range rounded outward to 1/32) and the angles
    ``phi_range`` (rounded outward to pi/64), cached per prior."""
    u = np.log(norms)
    lo = math.floor(float(u.min()) / _U_STEP) * _U_STEP
    hi = max(math.ceil(float(u.max()) / _U_STEP) * _U_STEP, lo + _U_STEP)
    step = math.pi / 64
    p_lo = max(math.floor(phi_range[0] / step) * step, 0.0)
    p_hi = min(max(math.ceil(phi_range[1] / step) * step, p_lo + step), math.pi)
    pk = _prior_key(prior)
    key = (pk, lo, hi, p_lo, p_hi, grid)
    if pk is not None and key in _CACHE:
        return _CACHE[key]
    table = DistanceTable(prior, lo, hi, grid, p_lo, p_hi)
    if pk is not None:
        if len(_CACHE) >= 16:
            _CACHE.clear()
        _CACHE[key] = table
    return table
