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
problems are stacked into a single banded system (one ``scipy.linalg.solve_banded`` call per
iteration).  Atypical endpoints give near-radial legs at the ends of the path, and narrow priors
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

from dataclasses import dataclass

import numpy as np
from scipy.linalg import solve_banded

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
_SHELL_LEG = 0.003  # theta-scale of the radial legs of shell_profile (0.01 and 0.03 converge more slowly)
_FLAT = 1e-13  # relative Newton decrement at which the solve has converged
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


def _segments(u: np.ndarray, h: np.ndarray, prior: NormPrior, order: int) -> dict:
    """Per-segment energy ``E_j`` (B, m) and its first/second derivatives in (u_j, u_{j+1}).

    ``E = l * M`` with ``l = sqrt(du^2 + h^2)`` and ``M`` the mean of ``F`` over ``[u_j, u_{j+1}]``:
    3-point Gauss-Legendre for short pieces, the closed-form primitive for long ones.
    """
    p, q = u[:, :-1], u[:, 1:]
    du = q - p
    ell = np.sqrt(du * du + h * h)
    nodes = p[..., None] + _S * du[..., None]
    derivs = prior.f_derivatives(nodes, order)
    M = derivs[0] @ _G
    long = np.abs(du) > _CLOSED_FORM_DU
    any_long = bool(long.any())
    if any_long:
        du_safe = np.where(long, du, 1.0)
        M = np.where(long, prior.primitive_difference(p, q) / du_safe, M)
    seg = {"E": ell * M, "M": M, "ell": ell, "du": du}
    if order >= 1:
        safe = np.where(ell > 0, ell, 1.0)
        lq = np.where(ell > 0, du / safe, 0.0)
        Mp = derivs[1] @ (_G * (1 - _S))
        Mq = derivs[1] @ (_G * _S)
        if any_long:
            Fp = prior.f_derivatives(p, order)
            Fq = prior.f_derivatives(q, order)
            Mp_c = (M - Fp[0]) / du_safe
            Mq_c = (Fq[0] - M) / du_safe
        if order >= 2:
            Mpp = derivs[2] @ (_G * (1 - _S) ** 2)
            Mpq = derivs[2] @ (_G * _S * (1 - _S))
            Mqq = derivs[2] @ (_G * _S**2)
            if any_long:
                Mpp = np.where(long, (2 * Mp_c - Fp[1]) / du_safe, Mpp)
                Mqq = np.where(long, (Fq[1] - 2 * Mq_c) / du_safe, Mqq)
                Mpq = np.where(long, (Mq_c - Mp_c) / du_safe, Mpq)
        if any_long:
            Mp = np.where(long, Mp_c, Mp)
            Mq = np.where(long, Mq_c, Mq)
        seg["Ep"] = ell * Mp - M * lq
        seg["Eq"] = ell * Mq + M * lq
        seg["h_over_ell"] = np.where(ell > 0, h / safe, 1.0)
        if order >= 2:
            curv = np.where(ell > 0, h * h / safe**3, 0.0)
            seg["Epp"] = ell * Mpp + M * curv - 2 * lq * Mp
            seg["Eqq"] = ell * Mqq + M * curv + 2 * lq * Mq
            seg["Epq"] = ell * Mpq - M * curv + lq * (Mp - Mq)
    return seg


def uniform_grid(B: int, m: int) -> np.ndarray:
    """Uniform angular grid fractions, shape (B, m+1)."""
    return np.broadcast_to(np.linspace(0.0, 1.0, m + 1), (B, m + 1)).copy()


def lobatto_grid(B: int, m: int) -> np.ndarray:
    """Chebyshev-Lobatto grid fractions ``(1 - cos(pi j / m)) / 2``, shape (B, m+1): nodes crowd both ends, where
    an optimal curve turns fastest (its legs between an endpoint off the cheapest shell and the shell). Solved on
    it without adaptation, typical and atypical pairs at d = 16384 reach energies 1e-5 below those of a uniform
    grid after adaptation rounds, in a third of the time (``benchmarks/bench_geometry.py``)."""
    return np.broadcast_to((1.0 - np.cos(np.pi * np.arange(m + 1) / m)) / 2.0, (B, m + 1)).copy()


def linear_profile(u0: np.ndarray, um: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """``u`` linear in theta between the endpoints on grid ``tau`` (B, m+1)."""
    return u0[:, None] + (um - u0)[:, None] * tau


def shell_profile(u0: np.ndarray, um: np.ndarray, tau: np.ndarray, u_star: float) -> np.ndarray:
    """``u`` that leaves each endpoint for the cheapest log-norm ``u_star`` within a few hundredths of theta and
    follows it in between: the shape of the optimum when the endpoints lie off a sharp shell."""
    return (u_star + (u0 - u_star)[:, None] * np.exp(-tau / _SHELL_LEG)
            + (um - u_star)[:, None] * np.exp(-(1 - tau) / _SHELL_LEG))


def initial_profile(u0, um, tau, phi, prior: NormPrior) -> np.ndarray:
    """Per pair, the lower-energy of :func:`linear_profile` and :func:`shell_profile`: endpoints off the shell
    start near the curve that hugs it (a few Newton iterations fewer), the others where they always did."""
    linear = linear_profile(u0, um, tau)
    shell = shell_profile(u0, um, tau, prior.cheapest_log_norm)
    shell[:, 0], shell[:, -1] = u0, um
    better = energy(shell, tau, phi, prior) < energy(linear, tau, phi, prior)
    return np.where(better[:, None], shell, linear)


def _steps(phi: np.ndarray, tau: np.ndarray) -> np.ndarray:
    return phi[:, None] * np.diff(tau, axis=1)


def energy(u: np.ndarray, tau: np.ndarray, phi: np.ndarray, prior: NormPrior) -> np.ndarray:
    """Exact energy of the piecewise log-spiral curve with nodes ``(u, phi * tau)``; shape (B,)."""
    return _segments(u, _steps(np.asarray(phi, dtype=np.float64), tau), prior, 0)["E"].sum(axis=1)


def _locate(cum: np.ndarray, target: np.ndarray):
    """For non-decreasing rows ``cum`` (B, m+1) and ``target`` (B, n) in [cum_0, cum_m]:
    piece index j (B, n) in 0..m-1 with cum_j <= target, and the remainder target - cum_j."""
    j = (cum[:, None, 1:-1] <= target[:, :, None]).sum(axis=2)
    rows = np.arange(cum.shape[0])[:, None]
    return j, target - cum[rows, j]


def newton(u0, um, phi, prior: NormPrior, tau: np.ndarray, u_init=None, max_iter: int = 200,
           step_tol: float = 1e-9) -> PlanarSolution:
    """See :func:`_newton`; overflowing trial steps just evaluate to inf/nan and are rejected."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _newton(u0, um, phi, prior, tau, u_init, max_iter, step_tol)


def _newton(u0, um, phi, prior: NormPrior, tau: np.ndarray, u_init, max_iter: int, step_tol: float) -> PlanarSolution:
    """Minimise the discrete energy on the fixed grid ``tau`` for B pairs at once.

    ``u0 = log|a|``, ``um = log|b|``, ``phi = angle(a, b)`` (shape (B,)); ``u_init`` (B, m+1)
    warm-starts the interior.  Levenberg-damped Newton: a step is accepted only if the energy
    does not increase, so the result is never worse than the initial curve.
    """
    B, m1 = tau.shape
    m = m1 - 1
    u = initial_profile(u0, um, tau, phi, prior) if u_init is None else np.array(u_init, dtype=np.float64, copy=True)
    u[:, 0], u[:, -1] = u0, um
    h = _steps(phi, tau)
    n = m - 1  # interior unknowns per pair
    active = (phi > PARALLEL_ANGLE) & (n > 0)
    lam = np.full(B, 1e-6)
    E = _segments(u, h, prior, 0)["E"].sum(axis=1)
    it = 0
    while it < max_iter and active.any():
        it += 1
        idx = np.flatnonzero(active)
        ua, ha = u[idx], h[idx]
        seg = _segments(ua, ha, prior, 2)
        g = seg["Eq"][:, :-1] + seg["Ep"][:, 1:]
        diag = seg["Eqq"][:, :-1] + seg["Epp"][:, 1:]
        scale = np.abs(diag) + 1e-12 * np.abs(diag).mean(axis=1, keepdims=True) + 1e-300
        ab = np.zeros((3, idx.size * n))
        ab[1] = (diag + lam[idx, None] * scale).ravel()
        if n > 1:
            # one banded system for all pairs: couplings across pair boundaries are zero
            up = np.zeros((idx.size, n))
            up[:, :-1] = seg["Epq"][:, 1:-1]
            upf = up.ravel()[:-1]
            ab[0, 1:] = upf
            ab[2, :-1] = upf
        try:
            step = -solve_banded((1, 1), ab, g.ravel(), check_finite=False).reshape(idx.size, n)
        except (np.linalg.LinAlgError, ValueError):
            lam[idx] *= 10.0
            continue
        step = np.where(np.isfinite(step), step, 0.0)
        size = np.abs(step).max(axis=1)
        tiny = size < step_tol  # converged: the step is at rounding level, take it without checking
        # backtracking on the others: the largest of a few step scales that does not increase the energy
        chosen = np.where(tiny, 1.0, 0.0)
        E_before, lam_used = E[idx], lam[idx]
        todo = np.flatnonzero(~tiny)
        for scale in _SCALES:
            if todo.size == 0:
                break
            trial = ua[todo].copy()
            trial[:, 1:-1] += scale * step[todo]
            E_trial = _segments(trial, ha[todo], prior, 0)["E"].sum(axis=1)
            ok = E_trial <= E[idx[todo]]
            rows = idx[todo[ok]]
            u[rows], E[rows] = trial[ok], E_trial[ok]
            chosen[todo[ok]] = scale
            todo = todo[~ok]
        u[idx[tiny], 1:-1] += step[tiny]
        full, partial, none = chosen == 1.0, (chosen > 0) & (chosen < 1.0), chosen == 0
        lam[idx[full]] = np.maximum(lam[idx[full]] / 4.0, 1e-12)
        lam[idx[partial]] *= 2.0
        lam[idx[none]] = np.maximum(lam[idx[none]] * 10.0, 1e-3)
        # a full, nearly undamped Newton step this small leaves an error of order its square
        quadratic = full & (size < 1e-6) & (lam[idx] < 1e-4)
        # the Newton decrement -g.step of an undamped step (what it promises to gain) at rounding level:
        # converged, even where rounding makes the step's own energy come out a hair higher and it is rejected
        decrement = -(g * step).sum(axis=1)  # negative where the Hessian is indefinite: not a minimum yet
        flat = (lam_used < 1e-6) & (size < 1e-4) & (decrement >= 0) & (decrement <= _FLAT * np.abs(E_before))
        done = tiny | quadratic | flat | (lam[idx] > 1e8)
        active[idx[done]] = False
    seg = _segments(u, h, prior, 1)
    return PlanarSolution(
        u=u,
        tau=tau,
        phi=phi,
        energy=seg["E"].sum(axis=1),
        grad_u0=seg["Ep"][:, 0],
        grad_um=seg["Eq"][:, -1],
        grad_phi=(seg["M"] * seg["h_over_ell"] * np.diff(tau, axis=1)).sum(axis=1),
        iterations=it,
    )


def grid_monitor(u: np.ndarray, tau: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Per-piece share (B, m) of the adaptation monitor of the curves ``(u, phi * tau)``: ``(1 - s) l_j / sum l +
    s t_j / sum t`` with ``l_j`` the ``(u, theta)`` length of piece j, ``t_j`` half the turning angles at its two
    nodes and ``s`` = :data:`_TURN_SHARE` (arc length alone for nearly straight curves)."""
    du = np.diff(u, axis=1)
    ell = np.sqrt(du * du + _steps(phi, tau) ** 2)
    turn = np.abs(np.diff(np.arctan2(du, _steps(phi, tau)), axis=1))
    half = np.zeros_like(ell)
    half[:, :-1] += turn / 2
    half[:, 1:] += turn / 2
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
    us = np.full_like(u0, prior.cheapest_log_norm)
    f_star = prior.f_derivatives(np.array(prior.cheapest_log_norm), 0)[0]
    return np.abs(prior.primitive_difference(us, u0)) + np.abs(prior.primitive_difference(us, um)) + f_star * phi


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
    return mon.max(axis=1) > ratio * mon.mean(axis=1)


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
    """``(e^x - 1) / x`` with the limit 1 at 0."""
    safe = np.where(x == 0, 1.0, x)
    return np.where(np.abs(x) < 1e-12, 1.0 + x / 2, np.expm1(safe) / safe)


def _log1p_over(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``log(1 + y x) / x`` with the limit y at x = 0."""
    safe = np.where(x == 0, 1.0, x)
    return np.where(np.abs(x * y) < 1e-12, y, np.log1p(y * safe) / safe)


def sample(sol: PlanarSolution, steps: int, spacing: str, prior: NormPrior, fractions: np.ndarray | None = None):
    """Points on the solved curves: returns (r, theta), each of shape (steps, B).

    ``spacing``: "euclidean" (equal Euclidean arc length in R^d, closed form on log-spiral pieces),
    "nao" (equal energy), "angle" (equal increments of theta). ``fractions`` (in [0, 1], broadcast to
    (B, steps)) replace the evenly spaced ones: the points at those fractions of the chosen length.
    """
    u, tau, phi = sol.u, sol.tau, sol.phi
    B = u.shape[0]
    frac = np.broadcast_to(np.linspace(0.0, 1.0, steps) if fractions is None else fractions, (B, steps))
    rows = np.arange(B)[:, None]
    if spacing == "angle":
        j, rem = _locate(tau, frac)
        dt = np.diff(tau, axis=1)[rows, j]
        t = np.where(dt > 0, rem / np.where(dt > 0, dt, 1.0), 0.0)
    else:
        seg = _segments(u, _steps(phi, tau), prior, 0)
        du, ell = seg["du"], seg["ell"]
        p = u[:, :-1]
        # Euclidean arc length of a log-spiral piece: l_j (e^{u_{j+1}} - e^{u_j}) / du_j
        piece = ell * np.exp(p) * _expm1_over(du) if spacing == "euclidean" else seg["E"]
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
    t = np.clip(t, 0.0, 1.0)
    uu = u[rows, j] + t * (u[rows, j + 1] - u[rows, j])
    theta = phi[:, None] * (tau[rows, j] + t * (tau[rows, j + 1] - tau[rows, j]))
    return np.exp(uu).T, theta.T
