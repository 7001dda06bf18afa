"""NAO distances at matrix-multiply speed: the distance as a tabulated function of (|a|, |b|, angle).

The NAO distance depends on a pair only through ``u_a = log|a|``, ``u_b = log|b|`` and the angle ``phi``.  We
write it as ``D = H * R`` with a cheap envelope ``H`` and tabulate the smooth ratio ``R`` (near 1) as a
tensor-product Chebyshev interpolant in ``(u_a, u_b, phi)`` over the norms of the data and the angles that occur,
from the exact solver at the Chebyshev nodes.  Two envelopes, each exact in one limit:

* straight: ``H = sqrt(dW^2 + (F_m phi)^2)``, ``dW = |int_{|a|}^{|b|} w dr|``, ``F_m = (F(u_a) + F(u_b)) / 2``,
  ``F(u) = r w(r)``: the curve straight in ``(u, theta)``; ``D = dW`` at ``phi = 0`` and ``D ~ F phi`` for close
  norms.  Good when the norms span less than a few prior widths or the prior is wide.
* shell: ``H = A(u_a) + A(u_b) + F* phi``, ``A(u) = |int_{u*}^{u} sqrt(F^2 - F*^2) dv|``, ``F* = F(u*)`` the
  minimum of ``F`` (the cheapest shell).  In the plane of the pair the metric is ``F(u)^2 (du^2 + dtheta^2)``;
  ``theta`` is cyclic, so a geodesic keeps ``c = F sin(psi)`` (psi: its angle to the radial direction) and
  ``D = c phi + int sqrt(F^2 - c^2) |du|``.  As ``phi`` grows, ``c -> F*`` and the geodesic runs into the shell,
  along it and out, approaching it exponentially: near the shell ``F ~ F* (1 + (u - u*)^2 / x0^2)`` (for chi,
  ``x0 = sigma sqrt(2 w*) / mode``, about ``1.07 sigma / mode``) and the offset decays like
  ``exp(-sqrt(2) theta / x0)``, so ``D = H`` up to a relative ``O(exp(-sqrt(2) phi / x0))``.  ``A`` is analytic
  (``sqrt(F^2 - F*^2) ~ |u - u*|``, whose primitive from ``u*`` is smooth), so ``R`` is smooth across the
  shell.  For chi(d) at high d the shell is very narrow (``x0 = 0.006`` rad at d = 16384, 0.024 at d = 1024):
  this is the envelope there, with ``R - 1`` at the solver's own error (~2e-5) from ``phi ~ 10-20 x0`` on, and
  tables over mean +- 5 std of the norms meet the bound from ``phi ~ 5 x0`` on.  At angles of a few ``x0`` the
  distance switches between the shell route and the direct one (a real kink: two local minima); neither
  envelope covers tables reaching down there, the check fails and the caller solves exactly.  (Tables over
  seeds' norms at larger angles once missed the bound for another reason: the exact solver itself was off by up
  to 5e-3 there, its grid not resolving the bends into the shell; see :mod:`planar`.)

The table computes ``R`` for both envelopes from the same exact values, keeps the one with the smaller checked
error, and is checked against the exact solver at random points of its box and refined until the relative error
is below :data:`TABLE_RTOL` (else the caller falls back to the exact solver).  Evaluating it for a block of rows
is ``n_phi`` small matrix products (rows' and columns' u-bases against the coefficients) and a Clenshaw sum over
``phi``, so the whole matrix costs about one Gram matrix.
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
_SIZES = ((4, 8), (8, 24), (12, 36), (16, 48))  # (nodes in u, nodes in phi) tried in turn
ENVELOPES = ("straight", "shell")
_U_STEP = 1.0 / 32  # table ranges are rounded outward to this grid in log-norm, so nearby data reuse one table
_CACHE: dict = {}
_BLOCK = 1 << 22  # pairs evaluated at once
_SHELL_X, _SHELL_W = np.polynomial.legendre.leggauss(32)
_SHELL_S, _SHELL_G = (_SHELL_X + 1.0) / 2.0, _SHELL_W / 2.0  # nodes on [0, 1], weights summing to 1


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


def shell_leg_cost(prior: NormPrior, u: np.ndarray) -> np.ndarray:
    """``A(u) = |int_{u*}^{u} sqrt(F(v)^2 - F*^2) dv|`` (``F = r w``, ``F* = F(u*)`` its minimum): the cost of the leg
    between log-norm ``u`` and the cheapest shell of the geodesic that runs along the shell (32-point Gauss-Legendre
    on ``[u*, u]``, an analytic function of ``u``)."""
    u = np.asarray(u, dtype=np.float64)
    u_star = prior.cheapest_log_norm
    f_star = float(prior.f_derivatives(np.array(u_star), 0)[0])
    x = u - u_star
    F = prior.f_derivatives(u_star + x[..., None] * _SHELL_S, 0)[0]
    return np.abs(x) * (np.sqrt(np.maximum(F * F - f_star * f_star, 0.0)) @ _SHELL_G)


class DistanceTable:
    """The NAO distance of ``prior`` for log-norms in ``[u_lo, u_hi]`` and angles in ``[phi_lo, phi_hi]`` (see the
    module docstring); ``error`` is the largest checked relative error, ``envelope`` the envelope kept."""

    def __init__(self, prior: NormPrior, u_lo: float, u_hi: float, grid: int, phi_lo: float = 0.0,
                 phi_hi: float = math.pi, sizes=_SIZES, seed: int = 0):
        self.prior, self.u_lo, self.u_hi, self.grid = prior, u_lo, u_hi, grid
        self.phi_lo, self.phi_hi = phi_lo, phi_hi
        # the distance changes shape over about one prior-width of norm around the mode: interpolate in
        # t = asinh((r - mode) / std), in which that region and the far tails get nodes alike
        self._centre, self._width = prior.mode, prior.std
        self.t_lo, self.t_hi = self._t(np.array(u_lo)), self._t(np.array(u_hi))
        self.u_star = prior.cheapest_log_norm  # origin of the primitive W (any point would do)
        self.f_star = float(prior.f_derivatives(np.array(self.u_star), 0)[0])
        rng = np.random.default_rng(seed)
        check = (rng.uniform(u_lo, u_hi, _CHECK_POINTS), rng.uniform(u_lo, u_hi, _CHECK_POINTS),
                 phi_lo + (phi_hi - phi_lo) * rng.beta(0.7, 0.7, _CHECK_POINTS))  # more points near the ends
        exact = planar.solve(*check, prior, grid=grid).energy
        check_t = tuple(torch.from_numpy(v) for v in check)
        self.error, self.errors, self.envelope, self.coef = math.inf, {}, ENVELOPES[0], None
        for n_u, n_phi in sizes:
            coefs = self._build(n_u, n_phi)
            for name, coef in coefs.items():  # both envelopes share the exact values: keep the better
                self.envelope, self.coef = name, coef
                got = self.evaluate(*check_t).numpy()
                self.errors[name] = float(np.max(np.abs(got - exact) / np.maximum(exact, 1e-300)))
            self.envelope = min(self.errors, key=self.errors.get)
            self.coef, self.error = coefs[self.envelope], self.errors[self.envelope]
            if self.error <= _BUILD_RTOL:
                break

    @property
    def ok(self) -> bool:
        """Whether the checked relative error is within :data:`TABLE_RTOL`."""
        return self.error <= TABLE_RTOL

    def _t(self, u):
        return np.arcsinh((np.exp(u) - self._centre) / self._width)

    def _build(self, n_u: int, n_phi: int) -> dict:
        """Chebyshev coefficients (n_u, n_u, n_phi) of ``R = D / H`` for each envelope, from exact solves at the
        nodes."""
        u = np.log(self._centre + self._width * np.sinh(_cheb_nodes(n_u, float(self.t_lo), float(self.t_hi))))
        phi = _cheb_nodes(n_phi, self.phi_lo, self.phi_hi)
        i, j = np.triu_indices(n_u)  # the distance is symmetric in the two norms: solve i <= j only
        ua, ub = np.repeat(u[i], n_phi), np.repeat(u[j], n_phi)
        ph = np.tile(phi, i.size)
        energy = planar.solve(ua, ub, ph, self.prior, grid=self.grid).energy
        ta, tb = self._seed_terms(ua), self._seed_terms(ub)
        out = {}
        for name in ENVELOPES:
            ratio = energy / self._envelope(name, ta, tb, ph)
            R = np.empty((n_u, n_u, n_phi))
            R[i, j] = ratio.reshape(i.size, n_phi)
            R[j, i] = ratio.reshape(i.size, n_phi)
            out[name] = torch.from_numpy(_cheb_coefficients(R))
        return out

    def _seed_terms(self, u: np.ndarray) -> dict:
        """Per-seed envelope terms (float64 arrays): the primitive ``W(u) - W(u*)`` and ``F(u)`` (straight) and the
        shell leg ``A(u)`` (shell)."""
        return {"W": self.prior.primitive_difference(np.full_like(u, self.u_star), u),
                "F": self.prior.f_derivatives(u, 0)[0], "A": shell_leg_cost(self.prior, u)}

    def _envelope(self, name: str, ta: dict, tb: dict, phi):
        """``H`` of envelope ``name`` from the two seeds' terms (numpy arrays or tensors that broadcast)."""
        if name == "shell":
            return ta["A"] + tb["A"] + self.f_star * phi
        dW, Fphi = tb["W"] - ta["W"], (ta["F"] + tb["F"]) / 2 * phi
        return torch.hypot(dW, Fphi) if isinstance(dW, torch.Tensor) else np.hypot(dW, Fphi)

    def _u_basis(self, u: torch.Tensor) -> torch.Tensor:
        t = torch.asinh((torch.exp(u) - self._centre) / self._width)
        x = ((2 * t - float(self.t_lo + self.t_hi)) / float(self.t_hi - self.t_lo)).clamp(-1.0, 1.0)
        return _cheb_basis(x, self.coef.shape[0])

    def _row_terms(self, u: torch.Tensor):
        """Per-seed quantities: the u-basis (n, n_u) and the envelope's terms (float64 tensors on u's device)."""
        un = u.cpu().numpy()
        if self.envelope == "shell":
            terms = {"A": shell_leg_cost(self.prior, un)}
        else:
            terms = {"W": self.prior.primitive_difference(np.full_like(un, self.u_star), un),
                     "F": self.prior.f_derivatives(un, 0)[0]}
        return self._u_basis(u), {k: torch.from_numpy(np.asarray(v)).to(u.device) for k, v in terms.items()}

    def evaluate(self, ua: torch.Tensor, ub: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
        """Distances of pairs given elementwise (float64 tensors of one shape (B,))."""
        Ba, Ta = self._row_terms(ua)
        Bb, Tb = self._row_terms(ub)
        # R = sum_{p,q,s} c_pqs T_p(ua) T_q(ub) T_s(x): contract the u-axes per pair, then the phi axis
        Cs = torch.einsum("bp,pqs,bq->bs", Ba, self.coef.to(ua.device), Bb)
        R = (Cs * _cheb_basis(self._phi_x(phi), Cs.shape[1])).sum(dim=1)
        return R * self._envelope(self.envelope, Ta, Tb, phi)

    def _phi_x(self, phi):
        return ((2 * phi - (self.phi_lo + self.phi_hi)) / (self.phi_hi - self.phi_lo)).clamp(-1.0, 1.0)

    def matrix(self, norms_a: torch.Tensor, norms_b: torch.Tensor, cos_block) -> torch.Tensor:
        """Distances of all pairs (rows a, columns b): ``cos_block(rows) -> cosines (len(rows), m)`` supplies the
        cosines block by block (so that at most one block of the matrix is held besides the result).  Pairs whose
        angle lies outside the table's are solved exactly."""
        n, m = norms_a.shape[0], norms_b.shape[0]
        out = torch.empty((n, m), dtype=torch.float64, device=norms_a.device)
        Bb, Tb = self._row_terms(torch.log(norms_b))
        Tb = {k: v[None, :] for k, v in Tb.items()}
        BbT = Bb.T.contiguous()
        coef = self.coef.to(norms_a.device)
        n_phi = coef.shape[2]
        rows = max(1, _BLOCK // max(m, 1))
        for s in range(0, n, rows):
            sl = slice(s, min(s + rows, n))
            Ba, Ta = self._row_terms(torch.log(norms_a[sl]))
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
            torch.mul(R, self._envelope(self.envelope, {k: v[:, None] for k, v in Ta.items()}, Tb, phi), out=out[sl])
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
