"""Exact NAO geodesics in the plane of the two endpoints (pure float64 numpy).

The weight depends only on ``|x|``, so the geodesic between ``a`` and ``b`` lies in
``span(a, b)``.  In polar coordinates ``(r, theta)`` of that plane with ``u = log r``
the energy is ``int F(u) sqrt(du^2 + dtheta^2)`` with ``F(u) = e^u w(e^u)``.  Along a
geodesic ``theta`` is monotone, so we parametrise ``u(theta)`` on a grid
``0 = theta_0 < ... < theta_m = phi`` and take the curve that is straight in ``(u, theta)``
between grid nodes (a log-spiral piece in the plane).  Its energy is computed exactly:

    E(u) = sum_j  l_j * mean_{t in [0, 1]} F(u_j + t (u_{j+1} - u_j)),
    l_j  = sqrt((u_{j+1} - u_j)^2 + (theta_{j+1} - theta_j)^2),

with the mean of ``F`` by 3-point Gauss-Legendre on short pieces and by the prior's primitive
``int F du = int w dr`` on long ones (closed form for the chi family, else tabulated by high-order
quadrature; so a coarse piece cannot under-count).  Any smooth norm density works (:class:`NormPrior`).
Being the line integral of a concrete curve, it is an upper bound of the true distance
that converges to it as the grid is refined.

It is minimised over the interior ``u_1..u_{m-1}`` by Levenberg-damped Newton steps with
backtracking (the energy never increases); the Hessian is tridiagonal, and B independent
problems are stacked into a single tridiagonal system (one LAPACK ``gtsv`` call per
iteration; a single pair keeps its bookkeeping in Python scalars, since on 193 nodes the ~100 small array
operations of the batched bookkeeping cost more than its arithmetic).  Each pair starts from the geodesic's own
legs (:class:`LegTable`: the angle a geodesic needs to reach each log-norm from the cheapest shell, tabulated
once per prior from the first integral ``F(u) / sqrt(1 + u'^2) = const``): for a narrow prior they are the
optimum up to the grid's discretisation (typical pairs at d = 16384 start 1e-8 to 1e-7 above it), so one Newton
step settles the solve.  The energy is not convex, so where the straight profile is a rival start in another
basin both are solved.  Atypical endpoints give near-radial legs at the ends of the path, and narrow priors
(chi at high d) paths that bend sharply into the cheapest shell, both near the ends: the grid is
Chebyshev-Lobatto (nodes crowded at both ends), which at grid 192 puts every pair measured within
5e-5 of the refined optimum in one Newton solve of a few iterations.  For pairs whose grid is still
very uneven under the monitor below, the grid is re-adapted and the problem re-solved, keeping a
round only where it lowers the energy.  The monitor gives half the nodes by ``(u, theta)`` arc length and half
by turning angle (the angle between consecutive pieces in the conformal ``(u, theta)`` coordinates):
a straight piece of length ``l`` across a bend of curvature ``k`` leaves the geodesic by about
``k l^2 / 8``, and its excess energy grows with the square of that offset, so bends need short pieces
however short they are in arc length.  (With arc length alone the two bends of chi(16384)'s paths
into the shell, about 0.01 rad long, got one piece each on a uniform grid: errors up to 5e-3 at grid 128
against a grid of 2048; with the turning angle, about 2e-5, at most ~1e-4.)
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dgtsv as _gtsv

from .prior import NormPrior

DEFAULT_GRID = 192
#: pairs whose angle is below this are treated as parallel (the radial path is optimal)
PARALLEL_ANGLE = 1e-9
#: rounds of grid adaptation (equidistribution of the monitor: arc length and turning angle) after the first solve
DEFAULT_ROUNDS = 3
_SCALES = (1.0, 0.5, 0.2, 0.05)
#: grids whose largest piece of the monitor exceeds this multiple of the mean piece are adapted. On the Lobatto grid
#: adaptation gains at most 6e-5 of the energy (200 pairs per d = 64 ... 65536, norms 0.08 to 4.5 sqrt(d)), less than
#: the uniform grid's adapted result was off by, at a third of the cost: only wildly uneven grids are adapted
_UNEVEN = 30.0
#: adapted grids still this uneven are adapted again (a looser test: a second round mostly gains ~1e-5 relative)
_STILL_UNEVEN = 6.0
_FLAT = 1e-13  # relative Newton decrement at which the solve has converged (or 4x F's rounding noise, if larger)
_SETTLED = 1e-6  # relative decrement of a full undamped step after which the solve has converged ...
_SETTLED_STEP = 1e-4  # ... if no node moved by more than this in u
#: the other start is solved too where its energy is within this share of the chosen one's ...
_RIVAL = 0.1
#: ... and its profile differs from it somewhere by more than this in u
_APART = 0.1
#: legs with s phi above this overlap by e^-20 at most: the legs start is then taken unless the straight one is a rival
_LEGS_EXACT = 20.0
#: share of the monitor given to the turning angle (the rest to (u, theta)-arc length)
_TURN_SHARE = 0.5
#: curves turning less than this in total (radians) are adapted by arc length alone
_STRAIGHT = 1e-3

_GL_X, _GL_W = np.polynomial.legendre.leggauss(3)
_S = (_GL_X + 1.0) / 2.0  # nodes on [0, 1]
_G = _GL_W / 2.0  # weights summing to 1


@dataclass
class PlanarSolution:
    """Optimal log-radius profile ``u[b, j] = log r(theta_j)``, ``theta_j = phi[b] * tau[b, j]``,
    with the optimal energy and its gradient with respect to the endpoint data."""

    u: np.ndarray  # (B, m+1)
    tau: np.ndarray  # (B, m+1) angular grid as fractions of phi, 0 = tau_0 < ... < tau_m = 1
    phi: np.ndarray  # (B,)
    energy: np.ndarray  # (B,)  optimal energy = NAO distance
    grad_u0: np.ndarray  # (B,)  dE*/d log|a|
    grad_um: np.ndarray  # (B,)  dE*/d log|b|
    grad_phi: np.ndarray  # (B,)  dE*/d phi
    iterations: int

    @property
    def grid(self) -> int:
        return self.u.shape[1] - 1


#: pieces with |du| above this use the primitive of F (closed form or tabulated) instead of Gauss-Legendre
_CLOSED_FORM_DU = 0.02


_MEAN_P, _MEAN_Q = _G * (1 - _S), _G * _S  # d/du_j and d/du_{j+1} of the Gauss-Legendre mean
_MEAN_1 = np.stack([_MEAN_P, _MEAN_Q], axis=1)  # (3, 2)
_MEAN_2 = np.stack([_G * (1 - _S) ** 2, _G * _S * (1 - _S), _G * _S**2], axis=1)  # (3, 3): pp, pq, qq
_TINY = 1e-100  # floor of piece lengths (a zero-length piece has du = h = 0; its cube must not underflow)


def _segments(u: np.ndarray, h: np.ndarray, prior: NormPrior, order: int) -> dict:
    """Per-segment energy ``E_j`` (B, m) and its first/second derivatives in (u_j, u_{j+1}).

    ``E = l * M`` with ``l = sqrt(du^2 + h^2)`` and ``M`` the mean of ``F`` over ``[u_j, u_{j+1}]``:
    3-point Gauss-Legendre for short pieces, the closed-form primitive for long ones.
    """
    p, q = u[:, :-1], u[:, 1:]
    du = q - p
    ell = np.sqrt(du * du + h * h)
    derivs = prior.f_derivatives(p[..., None] + _S * du[..., None], order)
    M = derivs[0] @ _G
    any_long = bool(np.abs(du).max() > _CLOSED_FORM_DU) if du.size else False
    if any_long:
        long = np.abs(du) > _CLOSED_FORM_DU
        du_safe = np.where(long, du, 1.0)
        M = np.where(long, prior.primitive_difference(p, q) / du_safe, M)
    seg = {"E": ell * M, "M": M, "ell": ell, "du": du}
    if order >= 1:
        safe = np.maximum(ell, _TINY)
        lq = du / safe
        d1 = derivs[1] @ _MEAN_1
        Mp, Mq = d1[..., 0], d1[..., 1]
        if any_long:
            Fp = prior.f_derivatives(p, order)
            Fq = prior.f_derivatives(q, order)
            Mp_c = (M - Fp[0]) / du_safe
            Mq_c = (Fq[0] - M) / du_safe
        if order >= 2:
            d2 = derivs[2] @ _MEAN_2
            Mpp, Mpq, Mqq = d2[..., 0], d2[..., 1], d2[..., 2]
            if any_long:
                Mpp = np.where(long, (2 * Mp_c - Fp[1]) / du_safe, Mpp)
                Mqq = np.where(long, (Fq[1] - 2 * Mq_c) / du_safe, Mqq)
                Mpq = np.where(long, (Mq_c - Mp_c) / du_safe, Mpq)
        if any_long:
            Mp = np.where(long, Mp_c, Mp)
            Mq = np.where(long, Mq_c, Mq)
        M_lq = M * lq
        seg["Ep"] = ell * Mp - M_lq
        seg["Eq"] = ell * Mq + M_lq
        seg["h_over_ell"] = h / safe
        if order >= 2:
            curv = M * (h * h / safe**3)
            cross = lq * Mp
            seg["Epp"] = ell * Mpp + curv - 2 * cross
            seg["Eqq"] = ell * Mqq + curv + 2 * lq * Mq
            seg["Epq"] = ell * Mpq - curv + cross - lq * Mq
    return seg


def uniform_grid(B: int, m: int) -> np.ndarray:
    """Uniform angular grid fractions, shape (B, m+1)."""
    return np.broadcast_to(np.linspace(0.0, 1.0, m + 1), (B, m + 1)).copy()


@functools.lru_cache(maxsize=16)
def _lobatto_row(m: int) -> np.ndarray:
    row = (1.0 - np.cos(np.pi * np.arange(m + 1) / m)) / 2.0
    row.flags.writeable = False
    return row


def lobatto_grid(B: int, m: int) -> np.ndarray:
    """Chebyshev-Lobatto grid fractions ``(1 - cos(pi j / m)) / 2``, shape (B, m+1): nodes crowd both ends, where
    an optimal curve turns fastest (its legs between an endpoint off the cheapest shell and the shell). Solved on
    it without adaptation, typical and atypical pairs at d = 16384 reach energies 1e-5 below those of a uniform
    grid after adaptation rounds, in a third of the time (``benchmarks/bench_geometry.py``)."""
    return np.broadcast_to(_lobatto_row(m), (B, m + 1)).copy()


def linear_profile(u0: np.ndarray, um: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``u`` linear in theta between the endpoints on grid ``tau`` (B, m+1)."""
    return u0[:, None] + (um - u0)[:, None] * tau


_GL8_X, _GL8_W = np.polynomial.legendre.leggauss(8)
_GL8_S, _GL8_G = (_GL8_X + 1.0) / 2.0, _GL8_W / 2.0
_LEG_STEP = 1.0 / 128  # step in log|u - u*| of the leg tables
_LEG_REACH = 13.0  # tables end at |u - u*| = 13 (norms e^13 times off the shell), where legs are radial to rounding
_LEG_LINEAR = 1e-6  # below (F - F*) / F* = this a leg follows the linearised law (tables start there)
_LEG_TAIL = 60.0  # the linear law is tabulated this far below (legs at e^-60 times the first node: on the shell)


@dataclass(frozen=True)
class LegTable:
    """Angle a geodesic of the prior needs to reach log-norm ``u* -+ e^x`` from the cheapest shell, for x on a grid.

    The energy ``int F(u) sqrt(u'^2 + 1) dtheta`` does not depend on theta, so along a geodesic
    ``F(u) / sqrt(1 + u'^2) = c`` (Beltrami).  A leg joining the shell ``u = u*`` (reached only asymptotically) to an
    endpoint has ``c = F* = F(u*)``, hence with ``v = |u - u*| = e^x``

        dtheta / dx = v / sqrt((F(u)/F*)^2 - 1),    T(x) = int_{x_0}^x  v / sqrt((F/F*)^2 - 1) dx,

    and a leg from an endpoint at ``x_e`` is at ``x`` where ``T(x) = T(x_e) - theta`` after turning by theta.  Near
    the shell ``(F/F*)^2 - 1 ~ kappa v^2`` (``kappa = F''(u*)/F*``): ``T`` is linear in x with slope ``1/s``,
    ``s = sqrt(kappa)`` (the leg decays like ``e^{-s theta}``); the table holds that law from ``x_0 - 60`` to its
    first computed node ``x_0``, where ``(F - F*)/F* = 1e-6``, and ``T`` per cell of 1/128 by 8-point Gauss-Legendre
    in x up to ``v = 13`` (beyond, legs are radial to rounding).  Both sides are stored in one increasing table (the
    side ``u > u*`` shifted by ``x_shift`` in x and past the other's end in T) so that one ``np.interp`` serves both.
    """

    u_star: float
    f_star: float
    s: float  # sqrt(F''(u*) / F*)
    x: np.ndarray  # (2N,) log|u - u*| nodes: side u < u*, then side u > u* plus x_shift
    T: np.ndarray  # (2N,) increasing
    x_range: tuple  # (lowest, highest) x of one side
    x_shift: float
    t_first: np.ndarray  # (2,) T at the first node of each side


def rounding_noise(prior: NormPrior) -> float:
    """Relative rounding noise of ``F`` near ``u*``: the scatter of second differences of ``F`` on a grid of step 1e-9
    (the smooth part's are ~``kappa 1e-18``), over sqrt(6).  For chi(d) it grows with d, as ``F = r w`` is a small
    difference of terms of order ``d log r`` (2.6e-11 at d = 65536): energy changes below a few times this are noise."""
    def build():
        u = prior.cheapest_log_norm + 1e-9 * np.arange(-64, 65)
        f = prior.f_derivatives(u, 0)[0]
        return float(np.std(f[2:] - 2 * f[1:-1] + f[:-2]) / math.sqrt(6.0) / abs(f.mean()))

    return prior.cached("noise", build)


def leg_table(prior: NormPrior) -> LegTable | None:
    """The prior's :class:`LegTable` (built once per density), or None where ``F`` has no interior minimum with
    ``F'' > 0`` (e.g. chi(2) or the generalised chi with 1.5 degrees of freedom, whose ``F`` falls to 0 at the
    origin)."""
    return prior.cached("legs", lambda: _build_leg_table(prior))


def _build_leg_table(prior: NormPrior) -> LegTable | None:
    us = prior.cheapest_log_norm
    f0, f1, f2 = (float(v) for v in prior.f_derivatives(np.array(us), 2))
    if not (f0 > 0 and f2 > 0 and abs(f1) <= 1e-6 * f2):  # u* must be a stationary minimum, not the search's bound
        return None
    s = math.sqrt(f2 / f0)
    x0 = 0.5 * math.log(2.0 * _LEG_LINEAR) - math.log(s)
    x = x0 + _LEG_STEP * np.arange(int(math.ceil((math.log(_LEG_REACH) - x0) / _LEG_STEP)) + 1)
    v = np.exp(x[:-1, None] + _LEG_STEP * _GL8_S)
    sides = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for sign in (-1.0, 1.0):
            excess = prior.f_derivatives(us + sign * v, 0)[0] / f0 - 1.0
            rate = v / np.sqrt(excess * (excess + 2.0))
            # where F is not above F* (a second minimum) or overflows, the leg is cut or radial: no angle
            rate = np.where(np.isfinite(rate) & (excess > 0), rate, 0.0)
            sides.append(np.concatenate([[-_LEG_TAIL / s, 0.0], np.cumsum(rate @ _GL8_G) * _LEG_STEP]))
    x = np.concatenate([[x0 - _LEG_TAIL], x])
    x_shift = float(x[-1] - x[0]) + 1.0
    t_shift = float(sides[0][-1] - sides[1][0]) + 1.0
    return LegTable(us, f0, s, np.concatenate([x, x + x_shift]), np.concatenate([sides[0], sides[1] + t_shift]),
                    (float(x[0]), float(x[-1])), x_shift, np.array([sides[0][0], sides[1][0] + t_shift]))


def leg_offsets(u_end: np.ndarray, turn: np.ndarray, table: LegTable) -> np.ndarray:
    """``u - u*`` along the legs leaving log-norms ``u_end`` (B,) for the shell, after turning by ``turn`` (B, n)."""
    d = u_end - table.u_star
    side = (d > 0).astype(np.int64)
    with np.errstate(divide="ignore"):
        x_end = np.minimum(np.maximum(np.log(np.abs(d)), table.x_range[0]), table.x_range[1]) + side * table.x_shift
    t = np.maximum(np.interp(x_end, table.x, table.T)[:, None] - turn, table.t_first[side][:, None])
    x = np.interp(t, table.T, table.x) - (side * table.x_shift)[:, None]
    return np.sign(d)[:, None] * np.exp(x)


def leg_profile(u0: np.ndarray, um: np.ndarray, tau: np.ndarray, phi: np.ndarray, table: LegTable) -> np.ndarray:
    """``u`` that leaves ``u0`` along the geodesic leg to the cheapest shell, follows it and returns to ``um``:
    ``u* + (leg from u0 at theta) + (leg from um at phi - theta)``.  When ``s phi`` is large (a narrow prior,
    any angle not tiny) the legs do not overlap and this is the exact geodesic up to ``e^{-s phi}``; the
    remaining difference at the nodes is the grid's discretisation, which one Newton step removes."""
    theta = phi[:, None] * tau
    u0, um = np.asarray(u0, dtype=np.float64), np.asarray(um, dtype=np.float64)
    both = leg_offsets(np.concatenate([u0, um]), np.concatenate([theta, phi[:, None] - theta]), table)
    B = u0.shape[0]
    u = table.u_star + both[:B] + both[B:]
    u[:, 0], u[:, -1] = u0, um
    return u


def _starts(u0, um, tau, phi, prior: NormPrior):
    """Start profiles (B, m+1) and their energies (or None where not yet computed): per pair the lower-energy of :func:`linear_profile` and
    :func:`leg_profile`; and the rows (k,) whose other start is a rival (energy within :data:`_RIVAL` and a shape
    apart by more than :data:`_APART` in u, so possibly in another basin), with that start and its energy."""
    linear = linear_profile(u0, um, tau)
    table = leg_table(prior)
    if table is None:
        none = np.zeros(0, dtype=np.int64)
        return linear, energy(linear, tau, phi, prior), none, linear[none], np.zeros(0)
    legs = leg_profile(u0, um, tau, phi, table)
    B = u0.shape[0]
    if bool((table.s * phi.min() >= _LEGS_EXACT) and np.abs(legs - linear).max() <= _APART):
        # legs that do not overlap are the geodesic, and the straight start is in their basin: nothing to compare
        none = np.zeros(0, dtype=np.int64)
        return legs, None, none, legs[none], np.zeros(0)  # the energy: from Newton's first evaluation
    both = energy(np.concatenate([linear, legs]), np.concatenate([tau, tau]), np.concatenate([phi, phi]), prior)
    e_lin, e_legs = both[:B], both[B:]
    better = e_legs < e_lin
    u = np.where(better[:, None], legs, linear)
    E = np.where(better, e_legs, e_lin)
    other, E_other = np.where(better[:, None], linear, legs), np.where(better, e_lin, e_legs)
    rows = np.flatnonzero((E_other <= E * (1 + _RIVAL)) & (np.abs(legs - linear).max(axis=1) > _APART))
    return u, E, rows, other[rows], E_other[rows]


def initial_profile(u0, um, tau, phi, prior: NormPrior) -> np.ndarray:
    """Per pair, the lower-energy of :func:`linear_profile` and :func:`leg_profile`: for a narrow prior the
    legs are the optimum up to the grid's discretisation (one or two Newton steps), for wide priors and short
    arcs the straight profile can be closer."""
    return _starts(u0, um, tau, phi, prior)[0]


def _steps(phi: np.ndarray, tau: np.ndarray) -> np.ndarray:
    return phi[:, None] * (tau[:, 1:] - tau[:, :-1])


def energy(u: np.ndarray, tau: np.ndarray, phi: np.ndarray, prior: NormPrior) -> np.ndarray:
    """Exact energy of the piecewise log-spiral curve with nodes ``(u, phi * tau)``; shape (B,)."""
    return _segments(u, _steps(np.asarray(phi, dtype=np.float64), tau), prior, 0)["E"].sum(axis=1)


def _locate(cum: np.ndarray, target: np.ndarray):
    """For non-decreasing rows ``cum`` (B, m+1) and ``target`` (B, n) in [cum_0, cum_m]:
    piece index j (B, n) in 0..m-1 with cum_j <= target, and the remainder target - cum_j."""
    if cum.shape[0] == 1:  # the same count by bisection
        j = np.searchsorted(cum[0, 1:-1], target[0], side="right")[None]
        return j, target - cum[0, j]
    j = (cum[:, None, 1:-1] <= target[:, :, None]).sum(axis=2)
    rows = np.arange(cum.shape[0])[:, None]
    return j, target - cum[rows, j]


def newton(u0, um, phi, prior: NormPrior, tau: np.ndarray, u_init=None, max_iter: int = 200,
           step_tol: float = 1e-9) -> PlanarSolution:
    """See :func:`_newton`; overflowing trial steps just evaluate to inf/nan and are rejected.

    Without ``u_init`` each pair starts from :func:`initial_profile`; where the other start is a rival (the energy
    is not convex: e.g. far-inside endpoints of a wide prior at a large angle may be joined around the shell or
    through small norms) both are solved, stacked in one batch, and the lower optimum kept.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if u_init is not None:
            u = np.array(u_init, dtype=np.float64, copy=True)
            u[:, 0], u[:, -1] = u0, um
            return _newton(u0, um, phi, prior, tau, u, energy(u, tau, phi, prior), max_iter, step_tol)
        u, E, rows, alt_u, alt_E = _starts(u0, um, tau, phi, prior)
        if rows.size == 0:
            return _newton(u0, um, phi, prior, tau, u, E, max_iter, step_tol)
        B = u0.shape[0]
        cat = lambda x: np.concatenate([x, x[rows]])  # noqa: E731
        sol = _newton(cat(u0), cat(um), cat(phi), prior, cat(tau), np.concatenate([u, alt_u]),
                      np.concatenate([E, alt_E]), max_iter, step_tol)
        main, alt = take(sol, np.arange(B)), take(sol, np.arange(B, B + rows.size))
        better = alt.energy < main.energy[rows]
        _put(main, rows[better], take(alt, better))
        return main


def _newton(u0, um, phi, prior: NormPrior, tau: np.ndarray, u, E, max_iter: int, step_tol: float) -> PlanarSolution:
    """Minimise the discrete energy on the fixed grid ``tau`` for B pairs at once.

    ``u0 = log|a|``, ``um = log|b|``, ``phi = angle(a, b)`` (shape (B,)); ``u`` (B, m+1) is the start (updated in
    place), ``E`` its energy (None: computed here).  Levenberg-damped Newton: a step is accepted only if the energy does not increase, so
    the result is never worse than the start.  With ``delta = -g.step`` the Newton decrement (the gain the quadratic
    model promises; the energy gap to the optimum is about ``delta / 2``), a pair stops

    - when its step is at rounding level (taken unchecked);
    - after a full, nearly undamped step with ``delta <= _SETTLED |E|`` moving no node by more than
      ``_SETTLED_STEP``: the step squares Newton's error; against iterating on, the energy is at most 2e-8 higher
      (chi(d), d = 16 ... 65536, 200 pairs each, typical and 0.3-3 sqrt(d) norms; 2e-10 for d >= 1024), far below
      the grid's own discretisation error (~1e-5);
    - when ``delta <= _FLAT |E|`` (or below 4x the :func:`rounding_noise` of F) with little damping: converged; the
      step is not even tried (rounding can make its own energy come out a hair higher).
    """
    h = _steps(phi, tau)
    descend = _descend_one if u.shape[0] == 1 else _descend
    if E is None and descend is _descend:
        E = energy(u, tau, phi, prior)
    it, seg = descend(u, E, h, phi, prior, max_iter, step_tol) if u.shape[1] > 2 else (0, None)
    if seg is None:
        seg = _segments(u, h, prior, 1)
    return PlanarSolution(
        u=u,
        tau=tau,
        phi=phi,
        energy=seg["E"].sum(axis=1),
        grad_u0=seg["Ep"][:, 0],
        grad_um=seg["Eq"][:, -1],
        grad_phi=(seg["M"] * seg["h_over_ell"] * (tau[:, 1:] - tau[:, :-1])).sum(axis=1),
        iterations=it,
    )


def _descend(u, E, h, phi, prior: NormPrior, max_iter: int, step_tol: float) -> int:
    """The Newton iterations of :func:`_newton` on B pairs (``u``, ``E`` updated in place); returns their number and
    None (no segment data of the final ``u``)."""
    B, m1 = u.shape
    n = m1 - 2  # interior unknowns per pair
    active = phi > PARALLEL_ANGLE
    lam = np.full(B, 1e-6)
    flat_tol = max(_FLAT, 4.0 * rounding_noise(prior))
    it = 0
    while it < max_iter and active.any():
        it += 1
        idx = np.flatnonzero(active)
        ua, ha = u[idx], h[idx]
        seg = _segments(ua, ha, prior, 2)
        g = seg["Eq"][:, :-1] + seg["Ep"][:, 1:]
        diag = seg["Eqq"][:, :-1] + seg["Epp"][:, 1:]
        scale = np.abs(diag)
        scale += 1e-12 * scale.mean(axis=1, keepdims=True) + 1e-300
        # one tridiagonal system for all pairs (LAPACK gtsv, what solve_banded calls): couplings across pair
        # boundaries are zero
        up = np.zeros((idx.size, n))
        up[:, :-1] = seg["Epq"][:, 1:-1]
        off = up.ravel()[:-1]
        lam_used = lam[idx]
        _, _, _, x, info = _gtsv(off, (diag + lam_used[:, None] * scale).ravel(), off, g.ravel())
        if info != 0:  # singular (info > 0); a bad argument (info < 0) cannot happen here
            lam[idx] *= 10.0
            continue
        step = -x.reshape(idx.size, n)
        step = np.where(np.isfinite(step), step, 0.0)
        size = np.abs(step).max(axis=1)
        E_before = E[idx]
        decrement = -(g * step).sum(axis=1)  # negative where the Hessian is indefinite: not a minimum yet
        gain = np.where(decrement >= 0, decrement, np.inf) / np.abs(E_before)
        tiny = size < step_tol
        flat = ~tiny & (lam_used <= 1e-2) & (size < 1e-4) & (gain <= flat_tol)
        # backtracking on the others: the largest of a few step scales that does not increase the energy
        chosen = np.where(tiny, 1.0, 0.0)
        todo = np.flatnonzero(~tiny & ~flat)
        for scale in _SCALES:
            if todo.size == 0:
                break
            trial = ua[todo]
            trial[:, 1:-1] += scale * step[todo]
            E_trial = _segments(trial, ha[todo], prior, 0)["E"].sum(axis=1)
            ok = E_trial <= E_before[todo]
            rows = idx[todo[ok]]
            u[rows], E[rows] = trial[ok], E_trial[ok]
            chosen[todo[ok]] = scale
            todo = todo[~ok]
        if tiny.any():
            u[idx[tiny], 1:-1] += step[tiny]
        full = chosen == 1.0
        lam[idx] = np.where(full, np.maximum(lam_used / 4.0, 1e-12),
                            np.where(chosen > 0, lam_used * 2.0, np.maximum(lam_used * 10.0, 1e-3)))
        # a full, nearly undamped Newton step this small or promising this little leaves an error of order its square
        settled = (gain <= _SETTLED) & (size <= _SETTLED_STEP) & (lam_used <= 1e-6)
        quadratic = full & (((size < 1e-6) & (lam[idx] < 1e-4)) | settled)
        done = tiny | flat | quadratic | (lam[idx] > 1e8)
        active[idx[done]] = False
    return it, None


def _descend_one(u, E, h, phi, prior: NormPrior, max_iter: int, step_tol: float):
    """:func:`_descend` for one pair (``u`` (1, m+1)), its bookkeeping in Python scalars: the same rules, without the
    ~100 small array operations per iteration that cost more than the arithmetic on one pair.  Trial steps are
    evaluated to first order, so that the last accepted one also serves as the solution's segment data."""
    if not phi[0] > PARALLEL_ANGLE:
        return 0, None
    energy_now, lam, it, last = None if E is None else float(E[0]), 1e-6, 0, None
    flat_tol = max(_FLAT, 4.0 * rounding_noise(prior))
    while it < max_iter:
        it += 1
        seg = _segments(u, h, prior, 2)
        if energy_now is None:
            energy_now = float(seg["E"].sum())
        g = seg["Eq"][0, :-1] + seg["Ep"][0, 1:]
        diag = seg["Eqq"][0, :-1] + seg["Epp"][0, 1:]
        scale = np.abs(diag)
        scale += 1e-12 * float(scale.sum()) / scale.size + 1e-300
        off = seg["Epq"][0, 1:-1]
        _, _, _, x, info = _gtsv(off, diag + lam * scale, off, g)
        if info != 0:
            lam *= 10.0
            continue
        step = -x
        if not np.isfinite(step).all():
            step = np.where(np.isfinite(step), step, 0.0)
        size = float(np.abs(step).max())
        decrement = -float(g @ step)
        gain = decrement / abs(energy_now) if decrement >= 0 and energy_now != 0 else math.inf
        if size < step_tol:
            u[0, 1:-1] += step
            return it, None
        if lam <= 1e-2 and size < 1e-4 and gain <= flat_tol:
            return it, seg
        chosen = 0.0
        for factor in _SCALES:
            trial = u.copy()
            trial[0, 1:-1] += factor * step
            last = _segments(trial, h, prior, 1)
            e_trial = float(last["E"].sum())
            if e_trial <= energy_now:
                u[:], energy_now, chosen = trial, e_trial, factor
                break
        lam_used = lam
        lam = max(lam / 4.0, 1e-12) if chosen == 1.0 else lam * 2.0 if chosen > 0 else max(lam * 10.0, 1e-3)
        if chosen == 1.0 and ((size < 1e-6 and lam < 1e-4) or
                              (gain <= _SETTLED and size <= _SETTLED_STEP and lam_used <= 1e-6)):
            return it, last
        if lam > 1e8:
            return it, last if chosen > 0 else None
    return it, None


def grid_monitor(u: np.ndarray, tau: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Per-piece share (B, m) of the adaptation monitor of the curves ``(u, phi * tau)``: ``(1 - s) l_j / sum l +
    s t_j / sum t`` with ``l_j`` the ``(u, theta)`` length of piece j, ``t_j`` half the turning angles at its two
    nodes and ``s`` = :data:`_TURN_SHARE` (arc length alone for nearly straight curves)."""
    du, h = u[:, 1:] - u[:, :-1], _steps(phi, tau)
    ell = np.sqrt(du * du + h * h)
    heading = np.arctan2(du, h)
    turn = np.abs(heading[:, 1:] - heading[:, :-1]) / 2
    half = np.zeros_like(ell)
    half[:, :-1] = turn
    half[:, 1:] += turn
    length = ell / np.maximum(ell.sum(axis=1, keepdims=True), 1e-300)
    total = half.sum(axis=1, keepdims=True)
    bend = np.where(total > _STRAIGHT, half / np.maximum(total, 1e-300), length)
    return (1 - _TURN_SHARE) * length + _TURN_SHARE * bend


def adapt_grid(sol: PlanarSolution):
    """New grid equidistributing :func:`grid_monitor` along the solved curve, and the old curve's ``u`` at the new
    nodes (so the steep radial legs of atypical endpoints and the bends into the cheapest shell get their nodes)."""
    B, m1 = sol.u.shape
    du = np.diff(sol.u, axis=1)
    mon = grid_monitor(sol.u, sol.tau, sol.phi)
    cum = np.concatenate([np.zeros((B, 1)), np.cumsum(mon, axis=1)], axis=1)
    target = np.linspace(0.0, 1.0, m1)[None, :] * cum[:, -1:]
    j, rem = _locate(cum, target)
    rows = np.arange(B)[:, None]
    mj = mon[rows, j]
    frac = np.where(mj > 0, rem / np.where(mj > 0, mj, 1.0), 0.0).clip(0.0, 1.0)
    tau = sol.tau[rows, j] + frac * (sol.tau[rows, j + 1] - sol.tau[rows, j])
    u = sol.u[rows, j] + frac * du[rows, j]
    tau[:, 0], tau[:, -1] = 0.0, 1.0
    u[:, 0], u[:, -1] = sol.u[:, 0], sol.u[:, -1]
    tau = np.maximum.accumulate(tau, axis=1)
    return tau, u


def _pick(better: np.ndarray, new: PlanarSolution, old: PlanarSolution) -> PlanarSolution:
    b1 = better[:, None]
    return PlanarSolution(
        u=np.where(b1, new.u, old.u), tau=np.where(b1, new.tau, old.tau), phi=old.phi,
        energy=np.where(better, new.energy, old.energy), grad_u0=np.where(better, new.grad_u0, old.grad_u0),
        grad_um=np.where(better, new.grad_um, old.grad_um), grad_phi=np.where(better, new.grad_phi, old.grad_phi),
        iterations=old.iterations + new.iterations,
    )


def solve(u0, um, phi, prior: NormPrior, grid: int = DEFAULT_GRID, rounds: int = DEFAULT_ROUNDS,
          tau=None, u_init=None) -> PlanarSolution:
    """NAO geodesics for B endpoint pairs: Newton on a :func:`lobatto_grid` of ``grid`` pieces, then, for pairs
    whose grid is still uneven for their curve, ``rounds`` of grid adaptation + warm re-solve (a round is kept per
    pair only if it lowers the energy).

    ``u0 = log|a|``, ``um = log|b|``, ``phi = angle(a, b)`` in [0, pi] (arrays of shape (B,)).
    ``tau``/``u_init`` (B, grid+1) warm-start from a previous solution (endpoint columns replaced).

    The energy is not convex: for endpoints on one side of the cheapest norm ``u*`` the curve that stays
    near them and the detour (radially to ``u*``, around, back) are separate local minima.  Pairs whose
    solution costs more than that detour ``U = |W(u0) - W(u*)| + |W(um) - W(u*)| + F(u*) phi`` are
    re-solved from it, so the result is never above ``U``.
    """
    u0 = np.atleast_1d(np.asarray(u0, dtype=np.float64))
    um = np.atleast_1d(np.asarray(um, dtype=np.float64))
    phi = np.atleast_1d(np.asarray(phi, dtype=np.float64))
    B = u0.shape[0]
    tau = lobatto_grid(B, int(grid)) if tau is None else np.asarray(tau, dtype=np.float64)
    sol = _solve_from(u0, um, phi, prior, tau, u_init, rounds)
    detour = detour_energy(u0, um, phi, prior)
    rows = np.flatnonzero((sol.energy > detour * (1 + 1e-9)) & (phi > PARALLEL_ANGLE))
    if rows.size:
        m = tau.shape[1] - 1
        # the detour on a grid with a few nodes on each radial leg
        legs = max(2, m // 8)
        t = np.concatenate([np.linspace(0, 1e-6, legs + 1)[:-1], np.linspace(1e-6, 1 - 1e-6, m - 2 * legs + 1),
                            np.linspace(1 - 1e-6, 1, legs + 1)[1:]])
        st = np.broadcast_to(t, (rows.size, m + 1)).copy()
        su = np.full((rows.size, m + 1), prior.cheapest_log_norm)
        su[:, :legs] = u0[rows, None] + (prior.cheapest_log_norm - u0[rows, None]) * np.linspace(0, 1, legs)
        su[:, -legs:] = prior.cheapest_log_norm + (um[rows, None] - prior.cheapest_log_norm) * np.linspace(0, 1, legs)
        new = _solve_from(u0[rows], um[rows], phi[rows], prior, st, su, rounds)
        part = take(sol, rows)
        _put(sol, rows, _pick(new.energy < part.energy, new, part))
    return sol


def detour_energy(u0, um, phi, prior: NormPrior) -> np.ndarray:
    """Energy of the path radially to the cheapest log-norm ``u*`` (where ``F = r w`` is smallest), along the
    circle there, and radially back: an upper bound of the distance."""
    us = prior.cheapest_log_norm
    f_star = prior.cached("f_star", lambda: float(prior.f_derivatives(np.array(us), 0)[0]))
    ends = np.concatenate([u0, um])
    legs = np.abs(prior.primitive_difference(np.full_like(ends, us), ends))
    return legs[:u0.shape[0]] + legs[u0.shape[0]:] + f_star * phi


def _solve_from(u0, um, phi, prior: NormPrior, tau, u_init, rounds: int) -> PlanarSolution:
    sol = newton(u0, um, phi, prior, tau, u_init)
    rows = np.flatnonzero((phi > PARALLEL_ANGLE) & _uneven(sol, _UNEVEN))
    for _ in range(rounds):
        if rows.size == 0:
            break
        part = take(sol, rows)
        new_tau, new_u = adapt_grid(part)
        new = newton(u0[rows], um[rows], phi[rows], prior, new_tau, new_u)
        gain = part.energy - new.energy
        _put(sol, rows, _pick(gain > 0, new, part))
        rows = rows[(gain > 1e-6 * part.energy) & _uneven(new, _STILL_UNEVEN)]  # rows whose grid still matters
    return sol


def _uneven(sol: PlanarSolution, ratio: float) -> np.ndarray:
    """Rows whose largest piece of :func:`grid_monitor` exceeds ``ratio`` times the mean (otherwise adapting the grid
    changes little)."""
    mon = grid_monitor(sol.u, sol.tau, sol.phi)
    return mon.max(axis=1) > ratio / mon.shape[1]  # each row of the monitor sums to 1 (or is 0)


def take(sol: PlanarSolution, rows: np.ndarray) -> PlanarSolution:
    """Rows ``rows`` of a solution."""
    return PlanarSolution(u=sol.u[rows], tau=sol.tau[rows], phi=sol.phi[rows], energy=sol.energy[rows],
                          grad_u0=sol.grad_u0[rows], grad_um=sol.grad_um[rows], grad_phi=sol.grad_phi[rows],
                          iterations=sol.iterations)


def _put(sol: PlanarSolution, rows: np.ndarray, part: PlanarSolution) -> None:
    for name in ("u", "tau", "energy", "grad_u0", "grad_um", "grad_phi"):
        getattr(sol, name)[rows] = getattr(part, name)
    sol.iterations = max(sol.iterations, part.iterations)


# --- positions along a solved curve --------------------------------------------------------


def _expm1_over(x: np.ndarray) -> np.ndarray:
    """``(e^x - 1) / x`` with the limit 1 at 0 (expm1 keeps small x accurate)."""
    zero = x == 0
    return np.where(zero, 1.0, np.expm1(x) / np.where(zero, 1.0, x))


def _log1p_over(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``log(1 + y x) / x`` with the limit y at x = 0 (log1p keeps small y x accurate)."""
    zero = x == 0
    return np.where(zero, y, np.log1p(y * x) / np.where(zero, 1.0, x))


@functools.lru_cache(maxsize=16)
def _even(steps: int) -> np.ndarray:
    out = np.linspace(0.0, 1.0, steps)
    out.flags.writeable = False
    return out


def sample(sol: PlanarSolution, steps: int, spacing: str, prior: NormPrior, fractions: np.ndarray | None = None):
    """Points on the solved curves: returns (r, theta), each of shape (steps, B).

    ``spacing``: "euclidean" (equal Euclidean arc length in R^d, closed form on log-spiral pieces),
    "nao" (equal energy), "angle" (equal increments of theta). ``fractions`` (in [0, 1], broadcast to
    (B, steps)) replace the evenly spaced ones: the points at those fractions of the chosen length.
    """
    u, tau, phi = sol.u, sol.tau, sol.phi
    B = u.shape[0]
    frac = np.broadcast_to(_even(steps) if fractions is None else fractions, (B, steps))
    rows = np.arange(B)[:, None]
    p, dtau = u[:, :-1], tau[:, 1:] - tau[:, :-1]
    du = u[:, 1:] - p
    if spacing == "angle":
        j, rem = _locate(tau, frac)
        dt = dtau[rows, j]
        t = np.where(dt > 0, rem / np.where(dt > 0, dt, 1.0), 0.0)
        dj = du[rows, j]
    else:
        h = phi[:, None] * dtau
        if spacing == "euclidean":
            ell = np.sqrt(du * du + h * h)
            # Euclidean arc length of a log-spiral piece: l_j (e^{u_{j+1}} - e^{u_j}) / du_j
            piece = ell * np.exp(p) * _expm1_over(du)
        else:
            seg = _segments(u, h, prior, 0)
            ell, piece = seg["ell"], seg["E"]
        cum = np.concatenate([np.zeros((B, 1)), np.cumsum(piece, axis=1)], axis=1)
        j, rem = _locate(cum, frac * cum[:, -1:])
        dj, lj, pj = du[rows, j], ell[rows, j], p[rows, j]
        if spacing == "euclidean":
            t = _log1p_over(rem / (np.where(lj > 0, lj, 1.0) * np.exp(pj)), dj)
        else:
            Ej = piece[rows, j]
            t = np.where(Ej > 0, rem / np.where(Ej > 0, Ej, 1.0), 0.0)
            for _ in range(3):  # Newton on  l_j * int_0^t F(u_j + s du_j) ds = rem
                Fq = prior.f_derivatives(pj[..., None] + (t[..., None] * _S) * dj[..., None], 0)[0]
                Fend = lj * prior.f_derivatives(pj + t * dj, 0)[0]
                ok = Fend > 0
                t = t - np.where(ok, (lj * t * (Fq @ _G) - rem) / np.where(ok, Fend, 1.0), 0.0)
        t = np.where(lj > 0, t, 0.0)
    t = np.minimum(np.maximum(t, 0.0), 1.0)
    uu = u[rows, j] + t * dj
    theta = phi[:, None] * (tau[rows, j] + t * dtau[rows, j])
    return np.exp(uu).T, theta.T
